// The Herald sidecar. main only parses flags and wires components; each
// component lives in its own package under server/.
//
//   herald --socket=/run/herald/herald.sock --namespaces='team-*,!team-x'
//
// Handler processes connect to the socket (or --listen), register handlers,
// and the resources they name are watched from then on.

#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "nlohmann/json.hpp"
#include "server/engine/engine.h"
#include "server/engine/registry.h"
#include "server/kube/api_client.h"
#include "server/kube/beast_http_client.h"
#include "server/kube/cluster_config.h"
#include "server/kube/discovery.h"
#include "server/kube/label_selector.h"
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
ABSL_FLAG(std::string, socket_mode, "0660",
          "Permissions of the --socket file, in octal, set whatever the "
          "umask: whoever can connect can register handlers and receive "
          "every object watched.");
ABSL_FLAG(std::string, socket_group, "",
          "Group (name or number) to own the --socket file, so that handler "
          "processes running as another user in it can connect; empty: the "
          "sidecar's group.");
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
ABSL_FLAG(double, qps, 0,
          "Client-side rate limit of API requests per second; 0 for none, "
          "the default: the API server's own flow control paces the sidecar "
          "(its 429 answers are retried after their Retry-After), as "
          "controller-runtime and Kopf leave it by default.");
ABSL_FLAG(int, burst, 100,
          "Burst of the client-side rate limit (with --qps above 0).");
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

// Handler messages: at least this, so that a delivery of a small object fits,
// at most 1 GiB, so that gRPC's own limit (twice ours) fits in an int.
constexpr uint64_t kMinMessageBytes = 1024;
constexpr uint64_t kMaxMessageBytes = uint64_t{1} << 30;
// sun_path holds 108 bytes, the terminating NUL included.
constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;

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
        absl::StrCat("'", s,
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
  absl::Status valid = herald::engine::ValidateSpec(spec);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", s, "': ", valid.message()));
  }
  return spec;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "herald: %s\n", message.c_str());
  return 2;
}

// An octal file mode such as "0660" or "660"; nullopt when it is not one.
std::optional<mode_t> ParseSocketMode(const std::string& text) {
  if (text.empty() || text.size() > 4) return std::nullopt;
  mode_t mode = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return std::nullopt;
    mode = mode * 8 + (c - '0');
  }
  if (mode > 0777) return std::nullopt;
  return mode;
}

// A group by name or number; nullopt when there is no such group.
std::optional<gid_t> LookUpGroup(const std::string& name) {
  std::vector<char> buffer(16384);
  struct group entry;
  struct group* found = nullptr;
  if (::getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(),
                   &found) == 0 &&
      found != nullptr) {
    return found->gr_gid;
  }
  uint32_t gid = 0;
  if (absl::SimpleAtoi(name, &gid)) return static_cast<gid_t>(gid);
  return std::nullopt;
}

// "--qps='-1': must be 0 (no client-side limit) or more": the flag, its value
// as parsed, and why it is refused.
std::string FlagError(absl::string_view name, absl::string_view why) {
  const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  return absl::StrCat("--", name, "='",
                      flag != nullptr ? flag->CurrentValue() : "", "': ", why);
}

// The reason the flags cannot work together, naming the first bad one; ""
// when they are fine. Checked before anything starts.
std::string CheckFlags() {
  const double qps = absl::GetFlag(FLAGS_qps);
  if (!(qps >= 0) || std::isinf(qps)) {
    return FlagError("qps", "must be 0 (no client-side limit) or more");
  }
  if (absl::GetFlag(FLAGS_burst) < 1) {
    return FlagError("burst",
                     "must be at least 1 (requests let through at once by "
                     "the client-side limit)");
  }
  const uint64_t bytes = absl::GetFlag(FLAGS_max_message_bytes);
  if (bytes < kMinMessageBytes || bytes > kMaxMessageBytes) {
    return FlagError("max_message_bytes",
                     absl::StrCat("must be between ", kMinMessageBytes, " and ",
                                  kMaxMessageBytes, " (1 GiB)"));
  }
  if (absl::GetFlag(FLAGS_watch_idle_timeout) < absl::Seconds(1)) {
    return FlagError("watch_idle_timeout",
                     "must be at least 1s (every list and watch read is "
                     "abandoned after this long without data)");
  }
  if (absl::GetFlag(FLAGS_stop_wait) < absl::ZeroDuration()) {
    return FlagError("stop_wait", "must not be negative");
  }
  int n = 0;
  for (const auto& r : absl::GetFlag(FLAGS_resource)) {
    ++n;
    if (absl::StripAsciiWhitespace(r).empty()) {
      return FlagError("resource", absl::StrCat("entry ", n, " is empty"));
    }
  }
  const std::string prefix = absl::GetFlag(FLAGS_annotation_prefix);
  if (std::string why = herald::kube::QualifiedNameError(
          absl::AsciiStrToLower(absl::StrCat(prefix, "/x")));
      !why.empty()) {
    return FlagError("annotation_prefix",
                     absl::StrCat("not usable as an annotation prefix: ",
                                  prefix.empty() ? "it is empty" : why));
  }
  const std::string finalizer = absl::GetFlag(FLAGS_finalizer);
  if (!finalizer.empty()) {
    if (std::string why = herald::kube::QualifiedNameError(finalizer);
        !why.empty()) {
      return FlagError("finalizer",
                       absl::StrCat("not a valid finalizer name: ", why));
    }
  }
  const std::string socket = absl::GetFlag(FLAGS_socket);
  if (socket.size() > kMaxSocketPath) {
    return FlagError(
        "socket",
        absl::StrCat("a Unix socket path has at most ", kMaxSocketPath,
                     " bytes; this one has ", socket.size()));
  }
  if (!ParseSocketMode(absl::GetFlag(FLAGS_socket_mode)).has_value()) {
    return FlagError("socket_mode",
                     "not an octal mode between 0000 and 0777 (e.g. 0660)");
  }
  const std::string listen = absl::GetFlag(FLAGS_listen);
  if (!listen.empty() && !absl::StartsWith(listen, "unix:")) {
    const size_t colon = listen.rfind(':');
    int port = -1;
    if (colon == std::string::npos ||
        !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
        port > 65535) {
      return FlagError("listen",
                       "not host:port (e.g. 127.0.0.1:50051, [::]:50051)");
    }
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "The Herald sidecar: watches Kubernetes resources for handler "
      "processes.");
  absl::ParseCommandLine(argc, argv);
  if (std::string why = CheckFlags(); !why.empty()) return Fail(why);
  const std::string level = absl::GetFlag(FLAGS_log_level);
  using herald::runtime::Severity;
  if (level == "debug") {
    herald::runtime::SetMinLogSeverity(Severity::kDebug);
  } else if (level == "warning") {
    herald::runtime::SetMinLogSeverity(Severity::kWarning);
  } else if (level == "error") {
    herald::runtime::SetMinLogSeverity(Severity::kError);
  } else if (level != "info") {
    return Fail(FlagError("log_level", "not debug, info, warning or error"));
  }
  const auto resources = absl::GetFlag(FLAGS_resource);
  auto scope =
      herald::kube::NamespaceScope::Parse(absl::GetFlag(FLAGS_namespaces));
  if (!scope.ok()) {
    return Fail(FlagError("namespaces", scope.status().message()));
  }
  std::optional<gid_t> socket_gid;
  if (const std::string group = absl::GetFlag(FLAGS_socket_group);
      !group.empty()) {
    socket_gid = LookUpGroup(group);
    if (!socket_gid) return Fail(FlagError("socket_group", "no such group"));
  }
  const nlohmann::json operator_memo =
      nlohmann::json::parse(absl::GetFlag(FLAGS_operator_memo), nullptr, false);
  if (!operator_memo.is_object()) {
    return Fail(FlagError("operator_memo", "not a JSON object"));
  }
  std::vector<herald::v1::HandlerSpec> indices;
  for (const auto& flag : absl::GetFlag(FLAGS_index)) {
    auto spec = ParseIndexFlag(flag);
    if (!spec.ok()) return Fail(FlagError("index", spec.status().message()));
    indices.push_back(*spec);
  }

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
  engine_options.engine.operator_memo = operator_memo;
  engine_options.scope = *scope;
  engine_options.watch = watch_options;
  engine_options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  if (absl::GetFlag(FLAGS_log_events)) engine_options.observer = &log_events;
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
      return Fail(FlagError("health_listen", port.status().message()));
    }
    HERALD_LOG(INFO, "main") << "/healthz and /readyz on " << health_listen
                             << " (port " << *port << ")";
  }

  herald::rpc::HandlerService handler_service(&engine);
  // Health knows every service served here. (Reflection's name has no
  // generated constant in the installed headers.)
  herald::rpc::HealthService health_service(
      {herald::v1::HandlerService::service_full_name(),
       herald::v1::InspectionService::service_full_name(),
       "grpc.reflection.v1alpha.ServerReflection"});
  herald::rpc::InspectionService inspection_service(&engine);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string socket = absl::GetFlag(FLAGS_socket);
  const mode_t socket_mode = *ParseSocketMode(absl::GetFlag(FLAGS_socket_mode));
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
  // The socket is created readable and writable by its owner only, whatever
  // the umask, then given its group and mode: nobody else can connect in
  // between. (The umask is the process's; nothing else creates files now.)
  const mode_t umask_before = ::umask(0177);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ::umask(umask_before);
  if (!server) {
    engine.Stop();
    return Fail(absl::StrCat(
        "cannot listen on ", socket.empty() ? "" : "unix:" + socket,
        socket.empty() || listen.empty() ? "" : " and ", listen));
  }
  if (!socket.empty()) {
    std::string failed;
    if (socket_gid && ::chown(socket.c_str(), -1, *socket_gid) != 0) {
      failed = FlagError("socket_group",
                         absl::StrCat("cannot give ", socket,
                                      " to the group: ", std::strerror(errno)));
    } else if (::chmod(socket.c_str(), socket_mode) != 0) {
      failed = FlagError("socket_mode",
                         absl::StrCat("cannot set the mode of ", socket, ": ",
                                      std::strerror(errno)));
    }
    if (!failed.empty()) {
      server->Shutdown();
      engine.Stop();
      ::unlink(socket.c_str());
      return Fail(failed);
    }
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
