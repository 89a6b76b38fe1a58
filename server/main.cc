// The Herald sidecar. main only parses flags and wires components; each
// component lives in its own package under server/.
//
//   herald --socket=/run/herald/herald.sock --namespaces='team-*,!team-x'
//
// Handler processes connect to the socket (or --listen), register handlers,
// and the resources they name are watched from then on.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "nlohmann/json.hpp"
#include "server/engine/engine.h"
#include "server/kube/api_client.h"
#include "server/kube/beast_http_client.h"
#include "server/kube/cluster_config.h"
#include "server/kube/discovery.h"
#include "server/kube/namespace_scope.h"
#include "server/kube/resource_watch.h"
#include "server/rpc/handler_service.h"
#include "server/rpc/health_service.h"
#include "server/rpc/http_endpoints.h"
#include "server/rpc/inspection_service.h"
#include "server/runtime/logging.h"

ABSL_FLAG(
    std::string, kubeconfig, "",
    "Path to a kubeconfig file; default: $KUBECONFIG, then the in-cluster "
    "service account, then ~/.kube/config.");
ABSL_FLAG(std::string, context, "", "Kubeconfig context; default: current.");
ABSL_FLAG(std::string, socket, "/tmp/herald.sock",
          "Unix socket for handler processes; empty for none.");
ABSL_FLAG(std::string, listen, "",
          "Also listen on this TCP address (e.g. 127.0.0.1:50051); empty for "
          "none.");
ABSL_FLAG(std::vector<std::string>, resource, {},
          "Resources to watch from the start, comma-separated, as kubectl "
          "names them (kopfexamples, KopfExample.kopf.dev, "
          "deployments.v1.apps). Resources that handlers register for are "
          "watched anyway.");
ABSL_FLAG(std::string, annotation_prefix, "herald.dev",
          "Prefix of the progress and diff-base annotations; "
          "kopf.zalando.org takes over from a Kopf operator.");
ABSL_FLAG(std::string, finalizer, "",
          "Finalizer name; default <prefix>/finalizer, or Kopf's with Kopf's "
          "prefix.");
ABSL_FLAG(uint64_t, max_message_bytes, 16 << 20,
          "Largest message accepted from or sent to a handler process.");
ABSL_FLAG(bool, log_events, false, "Log every watch event at INFO.");
ABSL_FLAG(std::string, operator_memo, "{}",
          "The operator memo as a JSON object; each object's memo starts as a "
          "shallow copy of it.");
ABSL_FLAG(std::string, namespaces, "",
          "Namespace scope: empty for cluster-wide, names, globs and "
          "negations ('team-*,!team-x').");
ABSL_FLAG(double, qps, 50, "Client-side rate limit of API requests.");
ABSL_FLAG(int, burst, 100, "Burst of the client-side rate limit.");
ABSL_FLAG(bool, keep_managed_fields, false,
          "Keep metadata.managedFields in cached objects.");
ABSL_FLAG(absl::Duration, watch_idle_timeout, absl::Seconds(70),
          "Reconnect a watch that delivered nothing for this long.");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error.");
ABSL_FLAG(std::vector<std::string>, index, {},
          "Declarative indices computed by the sidecar, comma-separated: "
          "NAME=RESOURCE:label:KEY or NAME=RESOURCE:field:PATH (e.g. "
          "by_app=pods:label:app,by_node=pods:field:spec.nodeName).");
ABSL_FLAG(std::string, health_listen, "",
          "Serve /healthz (probe handlers) and /readyz (listings and indices "
          "in) over HTTP on this address, e.g. 0.0.0.0:8080; empty for "
          "none.");
ABSL_FLAG(absl::Duration, stop_wait, absl::Seconds(10),
          "On SIGTERM: how long daemons and cleanup handlers get to finish "
          "before the handler streams close.");

namespace {

using herald::kube::ResourceInfo;
using herald::kube::WatchEvent;

// Logs every event it sees: the sidecar's behaviour until handlers are wired.
class LogEvents : public herald::kube::WatchHandler {
 public:
  void OnEvent(const ResourceInfo& r, const WatchEvent& e) override {
    const auto& o = *e.object;
    HERALD_LOG(INFO, "event")
        << herald::kube::WatchEventTypeName(e.type) << " " << r.FullName()
        << " " << (o.key.ns.empty() ? "" : o.key.ns + "/") << o.key.name
        << " rv=" << o.resource_version << (e.from_listing ? " (listing)" : "");
  }
  void OnListed(const ResourceInfo& r, const std::string& ns) override {
    HERALD_LOG(INFO, "event") << "LISTED " << r.FullName() << " "
                              << (ns.empty() ? "(all namespaces)" : ns);
  }
};

// Parses NAME=RESOURCE:label:KEY or NAME=RESOURCE:field:PATH.
absl::StatusOr<herald::v1::HandlerSpec> ParseIndexFlag(const std::string& s) {
  const size_t eq = s.find('=');
  std::vector<std::string> parts;
  if (eq != std::string::npos) {
    parts = absl::StrSplit(s.substr(eq + 1), absl::MaxSplits(':', 2));
  }
  if (eq == std::string::npos || eq == 0 || parts.size() != 3 ||
      parts[0].empty() || parts[2].empty() ||
      (parts[1] != "label" && parts[1] != "field")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--index: '", s,
                     "' is not NAME=RESOURCE:label:KEY or "
                     "NAME=RESOURCE:field:PATH"));
  }
  herald::v1::HandlerSpec spec;
  spec.set_id(s.substr(0, eq));
  spec.set_resource(parts[0]);
  spec.set_cause(herald::v1::CAUSE_INDEX);
  if (parts[1] == "label") {
    spec.mutable_index()->set_label(parts[2]);
  } else {
    spec.mutable_index()->set_field(parts[2]);
  }
  return spec;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "herald: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "The Herald sidecar: watches Kubernetes resources for handler "
      "processes.");
  absl::ParseCommandLine(argc, argv);
  const std::string level = absl::GetFlag(FLAGS_log_level);
  using herald::runtime::Severity;
  if (level == "debug") {
    herald::runtime::SetMinLogSeverity(Severity::kDebug);
  } else if (level == "warning") {
    herald::runtime::SetMinLogSeverity(Severity::kWarning);
  } else if (level == "error") {
    herald::runtime::SetMinLogSeverity(Severity::kError);
  } else if (level != "info") {
    return Fail(absl::StrCat("--log_level: unknown level '", level, "'"));
  }
  const auto resources = absl::GetFlag(FLAGS_resource);
  auto scope =
      herald::kube::NamespaceScope::Parse(absl::GetFlag(FLAGS_namespaces));
  if (!scope.ok())
    return Fail(absl::StrCat("--namespaces: ", scope.status().message()));

  auto config = herald::kube::ResolveClusterConfig(
      absl::GetFlag(FLAGS_kubeconfig), absl::GetFlag(FLAGS_context));
  if (!config.ok()) return Fail(std::string(config.status().message()));
  auto http = herald::kube::NewBeastHttpClient(*config);
  if (!http.ok()) return Fail(std::string(http.status().message()));
  HERALD_LOG(INFO, "main") << "API server " << config->server.ToString() << " ("
                           << config->source << ")";

  // Signals go to the thread that waits for them, not to worker threads.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  herald::kube::ApiClient::Options api_options;
  api_options.qps = absl::GetFlag(FLAGS_qps);
  api_options.burst = absl::GetFlag(FLAGS_burst);
  herald::kube::ApiClient api(std::move(*http), api_options);
  herald::kube::Discovery discovery(&api);
  herald::kube::WatchOptions watch_options;
  watch_options.strip_managed_fields =
      !absl::GetFlag(FLAGS_keep_managed_fields);
  watch_options.idle_timeout = absl::GetFlag(FLAGS_watch_idle_timeout);
  LogEvents log_events;

  herald::engine::Engine::Options engine_options;
  engine_options.engine.prefix = absl::GetFlag(FLAGS_annotation_prefix);
  engine_options.engine.finalizer = absl::GetFlag(FLAGS_finalizer);
  engine_options.engine.operator_memo =
      nlohmann::json::parse(absl::GetFlag(FLAGS_operator_memo), nullptr, false);
  if (!engine_options.engine.operator_memo.is_object()) {
    return Fail("--operator_memo: not a JSON object: " +
                absl::GetFlag(FLAGS_operator_memo));
  }
  engine_options.scope = *scope;
  engine_options.watch = watch_options;
  engine_options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  if (absl::GetFlag(FLAGS_log_events)) engine_options.observer = &log_events;
  std::vector<herald::v1::HandlerSpec> indices;
  for (const auto& flag : absl::GetFlag(FLAGS_index)) {
    auto spec = ParseIndexFlag(flag);
    if (!spec.ok()) return Fail(std::string(spec.status().message()));
    indices.push_back(*spec);
  }
  // A fatal error (a startup handler failed for good) stops the sidecar as a
  // signal would, and sets the exit code.
  static std::atomic<bool> fatal{false};
  engine_options.on_fatal = [](const std::string& message) {
    std::fprintf(stderr, "herald: %s\n", message.c_str());
    fatal = true;
    ::kill(::getpid(), SIGTERM);
  };
  herald::engine::Engine engine(&api, &discovery, engine_options);
  engine.set_api_server(config->server.ToString());
  engine.Start();
  for (const auto& name : resources) engine.Watch(name);
  if (!indices.empty()) engine.AddHandlers(indices);

  herald::rpc::HttpEndpoints endpoints(
      [&engine] {
        auto r = engine.Probe(absl::Seconds(5));
        return herald::rpc::HttpEndpoints::Answer{r.ok ? 200 : 500, r.json};
      },
      [&engine] {
        const bool ready = engine.Ready();
        return herald::rpc::HttpEndpoints::Answer{
            ready ? 200 : 503,
            ready ? "{\"ready\":true}" : "{\"ready\":false}"};
      });
  const std::string health_listen = absl::GetFlag(FLAGS_health_listen);
  if (!health_listen.empty()) {
    auto port = endpoints.Start(health_listen);
    if (!port.ok()) {
      engine.Stop();
      return Fail(absl::StrCat("--health_listen: ", port.status().message()));
    }
    HERALD_LOG(INFO, "main") << "/healthz and /readyz on " << health_listen
                             << " (port " << *port << ")";
  }

  herald::rpc::HandlerService handler_service(&engine);
  herald::rpc::HealthService health_service;
  herald::rpc::InspectionService inspection_service(&engine);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string socket = absl::GetFlag(FLAGS_socket);
  const std::string listen = absl::GetFlag(FLAGS_listen);
  if (socket.empty() && listen.empty()) {
    return Fail("--socket and --listen are both empty: nowhere to listen");
  }
  if (!socket.empty()) {
    ::unlink(socket.c_str());  // A stale socket from a previous run.
    builder.AddListeningPort("unix:" + socket,
                             grpc::InsecureServerCredentials());
  }
  int tcp_port = 0;
  if (!listen.empty()) {
    builder.AddListeningPort(listen, grpc::InsecureServerCredentials(),
                             &tcp_port);
  }
  // gRPC's own limit sits above ours (see GrpcMessageLimit).
  const int grpc_limit = herald::rpc::HandlerService::GrpcMessageLimit(
      engine_options.max_message_bytes);
  builder.SetMaxReceiveMessageSize(grpc_limit);
  builder.SetMaxSendMessageSize(grpc_limit);
  builder.RegisterService(&handler_service);
  builder.RegisterService(&health_service);
  builder.RegisterService(&inspection_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    engine.Stop();
    return Fail(absl::StrCat(
        "cannot listen on ", socket.empty() ? "" : "unix:" + socket,
        socket.empty() || listen.empty() ? "" : " and ", listen));
  }
  HERALD_LOG(INFO, "main") << "handler stream listening on "
                           << (socket.empty() ? "" : "unix:" + socket)
                           << (listen.empty()
                                   ? ""
                                   : absl::StrCat(" ", listen, " (port ",
                                                  tcp_port, ")"));

  int sig = 0;
  sigwait(&signals, &sig);
  HERALD_LOG(INFO, "main") << (fatal           ? "a fatal error"
                               : sig == SIGINT ? "received SIGINT"
                                               : "received SIGTERM")
                           << "; stopping";
  // Daemons and cleanup handlers need the handler streams: they go first.
  engine.Drain(absl::GetFlag(FLAGS_stop_wait));
  endpoints.Stop();
  // Handler streams never end on their own: after the drain they are
  // cancelled (clients reconnect to the next sidecar), after a moment for
  // the last acks to go out.
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Milliseconds(200)));
  engine.Stop();
  if (!socket.empty()) ::unlink(socket.c_str());
  HERALD_LOG(INFO, "main") << "stopped";
  return fatal ? 1 : 0;
}
