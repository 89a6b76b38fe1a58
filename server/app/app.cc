#include "server/app/app.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/server_builder.h"
#include "server/kube/beast_http_client.h"
#include "server/kube/cluster_config.h"
#include "server/kube/counted_http_client.h"
#include "server/runtime/logging.h"

namespace herald::app {
namespace {

using kube::ResourceInfo;
using kube::WatchEvent;

// --log_events: logs every event the engine sees.
class LogEvents : public kube::WatchHandler {
 public:
  void OnEvent(const ResourceInfo& r, const WatchEvent& e) override {
    const auto& o = *e.object;
    // The text names the object as it always has (tests/heraldproc.py
    // parses it); JSON lines have its keys as well.
    HERALD_LOG(INFO, "event")
            .WithObjectKeys({r.FullName(), o.key.ns, o.key.name})
        << kube::WatchEventTypeName(e.type) << " " << r.FullName() << " "
        << (o.key.ns.empty() ? "" : o.key.ns + "/") << o.key.name
        << " rv=" << o.resource_version << (e.from_listing ? " (listing)" : "");
  }
  void OnListed(const ResourceInfo& r, const std::string& ns) override {
    HERALD_LOG(INFO, "event") << "LISTED " << r.FullName() << " "
                              << (ns.empty() ? "(all namespaces)" : ns);
  }
};

const char* Describe(StopReason reason) {
  switch (reason) {
    case StopReason::kSigint:
      return "received SIGINT";
    case StopReason::kSigterm:
      return "received SIGTERM";
    case StopReason::kFatal:
      return "a fatal error";
    case StopReason::kNone:
    case StopReason::kRequested:
      break;
  }
  return "asked to stop";
}

}  // namespace

void SayWhyItStops(absl::string_view message) {
  if (runtime::GetLogFormat() == runtime::LogFormat::kJson) {
    runtime::LogRecord record;
    record.time = absl::Now();
    record.severity = runtime::Severity::kError;
    record.logger = "main";
    record.message = std::string(message);
    runtime::WriteLog(record);
    return;
  }
  std::fprintf(stderr, "herald: %s\n", std::string(message).c_str());
}

App::App(AppOptions options) : options_(std::move(options)) {}

App::~App() { Shutdown(); }

absl::Status App::Start() {
  runtime::SetLogFormat(options_.log_format);
  if (options_.log_format == runtime::LogFormat::kJson) {
    runtime::RouteGrpcLogs();
  }
  if (absl::Status valid = ValidateAppOptions(options_); !valid.ok()) {
    return valid;
  }
  runtime::SetMinLogSeverity(options_.log_level);
  auto config =
      kube::ResolveClusterConfig(options_.kubeconfig, options_.context);
  if (!config.ok()) return config.status();
  auto http = kube::NewBeastHttpClient(*config);
  if (!http.ok()) return http.status();
  HERALD_LOG(INFO, "main") << "API server " << config->server.ToString() << " ("
                           << config->source << ")";

  kube::ApiClient::Options api_options;
  api_options.qps = options_.qps;
  api_options.burst = options_.burst;
  // rest_client_requests_total's host: "host:port", as client-go's.
  const std::string& h = config->server.host;
  const std::string api_host = absl::StrCat(
      h.find(':') == std::string::npos ? h : absl::StrCat("[", h, "]"), ":",
      config->server.port);
  if (options_.leader_elect) {
    auto election_http = kube::NewBeastHttpClient(*config);
    if (!election_http.ok()) return election_http.status();
    // Counted with the engine's requests, as client-go's are.
    election_api_ = std::make_unique<kube::ApiClient>(
        std::make_unique<kube::CountedHttpClient>(
            std::move(*election_http), metrics_.rest_client_requests_total,
            api_host),
        kube::ApiClient::Options());
    write_gate_ =
        std::make_unique<kube::WriteGate>(runtime::Clock::Monotonic());
    api_options.write_gate = write_gate_.get();
    lease_ = std::make_unique<election::Lease>(
        election_api_.get(), LeaderElectNamespace(options_),
        options_.leader_elect_lease_name);
    election::ElectionConfig election;
    election.identity = LeaderElectIdentity(options_);
    election.lease_duration = options_.leader_elect_lease_duration;
    election.renew_deadline = options_.leader_elect_renew_deadline;
    election.retry_period = options_.leader_elect_retry_period;
    election::LeaderElector::Callbacks callbacks;
    const std::string lease_name = options_.leader_elect_lease_name;
    metrics_.SetLeader(lease_name, false);
    callbacks.started_leading = [this, lease_name] {
      metrics_.SetLeader(lease_name, true);
      engine_->Lead();
    };
    // client-go's default: a leader that lost its lease exits, and the
    // kubelet restarts it as a standby. It stopped delivering and writing
    // at its renew deadline already.
    callbacks.stopped_leading = [this, lease_name] {
      metrics_.SetLeader(lease_name, false);
      std::fprintf(stderr,
                   "herald: lost the leader lease; exiting (a restart comes "
                   "back as a standby)\n");
      Stop(StopReason::kFatal);
    };
    elector_ = std::make_unique<election::LeaderElector>(
        lease_.get(), election, callbacks, runtime::Clock::Monotonic(),
        runtime::Clock::Real(), write_gate_.get());
  }
  api_ = std::make_unique<kube::ApiClient>(
      std::make_unique<kube::CountedHttpClient>(
          std::move(*http), metrics_.rest_client_requests_total, api_host),
      api_options);
  discovery_ = std::make_unique<kube::Discovery>(api_.get());
  engine::Engine::Options engine_options;
  engine_options.engine.prefix = options_.annotation_prefix;
  engine_options.engine.finalizer = options_.finalizer;
  engine_options.engine.operator_memo = options_.operator_memo.value;
  engine_options.scope = options_.namespaces;
  engine_options.watch.strip_managed_fields = !options_.keep_managed_fields;
  engine_options.watch.idle_timeout = options_.watch_idle_timeout;
  engine_options.max_message_bytes = options_.max_message_bytes;
  engine_options.metrics = &metrics_;
  if (options_.log_events) {
    log_events_ = std::make_unique<LogEvents>();
    engine_options.observer = log_events_.get();
  }
  // A fatal error (a startup handler failed for good) stops the sidecar as a
  // signal would, and sets the exit code.
  engine_options.on_fatal = [this](const std::string& message) {
    SayWhyItStops(message);
    Stop(StopReason::kFatal);
  };
  if (elector_) {
    election::LeaderElector* elector = elector_.get();
    engine_options.standby = true;
    engine_options.may_deliver = [elector] { return elector->Leading(); };
    engine_options.leadership = [elector] {
      const election::ElectionStatus st = elector->Status();
      engine::LeadershipSnapshot s;
      s.enabled = true;
      s.leading = st.leading;
      s.identity = st.identity;
      s.holder = st.holder;
      s.lease_namespace = st.lease_namespace;
      s.lease_name = st.lease_name;
      return s;
    };
  }
  engine_ = std::make_unique<engine::Engine>(api_.get(), discovery_.get(),
                                             engine_options);
  engine_->set_api_server(config->server.ToString());
  engine_->Start();
  started_ = true;
  for (const auto& name : options_.resources.names) engine_->Watch(name);
  if (!options_.indices.specs.empty()) {
    engine_->AddHandlers(options_.indices.specs);
  }

  engine::Engine* engine = engine_.get();
  endpoints_ = std::make_unique<rpc::HttpEndpoints>(
      [engine] {
        auto r = engine->Probe(absl::Seconds(5));
        return rpc::HttpEndpoints::Answer{r.ok ? 200 : 500, r.json};
      },
      [engine] {
        const bool ready = engine->Ready();
        return rpc::HttpEndpoints::Answer{
            ready ? 200 : 503,
            ready ? "{\"ready\":true}" : "{\"ready\":false}"};
      },
      [engine, exported = &metrics_] {
        // The loop-owned gauges are set first; a busy loop gets a second.
        engine->CollectMetrics(absl::Seconds(1));
        return rpc::HttpEndpoints::Answer{200, exported->Render(),
                                          metrics::kContentType};
      });
  if (!options_.health_listen.empty()) {
    auto port = endpoints_->Start(options_.health_listen);
    if (!port.ok()) {
      Abandon();
      return FlagError("health_listen", options_.health_listen,
                       port.status().message());
    }
    health_port_ = *port;
    HERALD_LOG(INFO, "main")
        << "/healthz and /readyz on " << options_.health_listen << " (port "
        << *port << "), /metrics there too";
  }
  if (absl::Status served = StartServer(); !served.ok()) {
    Abandon();
    return served;
  }
  // Last: nothing can fail after it, and the engine it leads is up.
  if (elector_) elector_->Start();
  return absl::OkStatus();
}

absl::Status App::StartServer() {
  handler_service_ = std::make_unique<rpc::HandlerService>(engine_.get());
  // Health knows every service served here. (Reflection's name has no
  // generated constant in the installed headers.)
  health_service_ = std::make_unique<rpc::HealthService>(
      std::set<std::string>{v1::HandlerService::service_full_name(),
                            v1::InspectionService::service_full_name(),
                            "grpc.reflection.v1alpha.ServerReflection"});
  inspection_service_ = std::make_unique<rpc::InspectionService>(engine_.get());
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string& socket = options_.socket;
  const std::string& listen = options_.listen;
  if (!socket.empty()) {
    ::unlink(socket.c_str());  // A stale socket from a previous run.
    builder.AddListeningPort("unix:" + socket,
                             grpc::InsecureServerCredentials());
  }
  if (!listen.empty()) {
    builder.AddListeningPort(listen, grpc::InsecureServerCredentials(),
                             &listen_port_);
  }
  // gRPC's own limit sits above ours (see GrpcMessageLimit).
  const int grpc_limit =
      rpc::HandlerService::GrpcMessageLimit(options_.max_message_bytes);
  builder.SetMaxReceiveMessageSize(grpc_limit);
  builder.SetMaxSendMessageSize(grpc_limit);
  builder.RegisterService(handler_service_.get());
  builder.RegisterService(health_service_.get());
  builder.RegisterService(inspection_service_.get());
  // The socket is created readable and writable by its owner only, whatever
  // the umask, then given its group and mode: nobody else can connect in
  // between. (The umask is the process's; nothing else creates files now.)
  const mode_t umask_before = ::umask(0177);
  server_ = builder.BuildAndStart();
  ::umask(umask_before);
  if (!server_) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", socket.empty() ? "" : "unix:" + socket,
        socket.empty() || listen.empty() ? "" : " and ", listen));
  }
  if (!socket.empty()) {
    const SocketGroup& group = options_.socket_group;
    if (group.gid && ::chown(socket.c_str(), -1, *group.gid) != 0) {
      return FlagError("socket_group", group.name,
                       absl::StrCat("cannot give ", socket,
                                    " to the group: ", std::strerror(errno)));
    }
    if (::chmod(socket.c_str(), options_.socket_mode.mode) != 0) {
      return FlagError("socket_mode", AbslUnparseFlag(options_.socket_mode),
                       absl::StrCat("cannot set the mode of ", socket, ": ",
                                    std::strerror(errno)));
    }
  }
  HERALD_LOG(INFO, "main") << "handler stream listening on "
                           << (socket.empty() ? "" : "unix:" + socket)
                           << (listen.empty()
                                   ? ""
                                   : absl::StrCat(" ", listen, " (port ",
                                                  listen_port_, ")"));
  return absl::OkStatus();
}

void App::Abandon() {
  shut_down_ = true;
  if (server_) {
    server_->Shutdown();
    if (!options_.socket.empty()) ::unlink(options_.socket.c_str());
  }
  endpoints_->Stop();
  engine_->Stop();
  if (elector_) elector_->Stop(false);
}

void App::Stop(StopReason reason) {
  if (reason == StopReason::kFatal) fatal_ = true;
  absl::MutexLock lock(&mu_);
  if (stop_reason_ == StopReason::kNone) stop_reason_ = reason;
}

StopReason App::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](StopReason* r) { return *r != StopReason::kNone; }, &stop_reason_));
  return stop_reason_;
}

int App::Shutdown() {
  if (!started_ || shut_down_) return fatal_ ? 1 : 0;
  shut_down_ = true;
  StopReason reason;
  {
    absl::MutexLock lock(&mu_);
    reason = stop_reason_;
  }
  HERALD_LOG(INFO, "main") << Describe(fatal_ ? StopReason::kFatal : reason)
                           << "; stopping";
  // Daemons and cleanup handlers need the handler streams: they go first.
  engine_->Drain(options_.stop_wait);
  if (endpoints_) endpoints_->Stop();
  // Handler streams never end on their own: after the drain they are
  // cancelled (clients reconnect to the next sidecar), after a moment for
  // the last acks to go out.
  if (server_) {
    server_->Shutdown(
        absl::ToChronoTime(absl::Now() + absl::Milliseconds(200)));
  }
  engine_->Stop();
  if (elector_) {
    // The lease goes last: the writes the engine queued end first (or are
    // refused), so that nothing is written once a standby may hold it.
    write_gate_->Close();
    const bool idle = write_gate_->WaitIdle(options_.leader_elect_retry_period);
    if (!idle) {
      HERALD_LOG(WARNING, "election")
          << "writes still in flight after "
          << absl::FormatDuration(options_.leader_elect_retry_period)
          << "; the lease is left to expire instead of being released";
    }
    elector_->Stop(/*release=*/idle);
    metrics_.SetLeader(options_.leader_elect_lease_name, false);
  }
  if (server_ && !options_.socket.empty()) ::unlink(options_.socket.c_str());
  HERALD_LOG(INFO, "main") << "stopped";
  return fatal_ ? 1 : 0;
}

int App::Run() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // Signals go to this thread, not to worker threads.
  std::thread waiter([this, signals] {
    int sig = 0;
    if (sigwait(&signals, &sig) == 0) {
      Stop(sig == SIGINT ? StopReason::kSigint : StopReason::kSigterm);
    }
  });
  int code = 2;
  if (absl::Status started = Start(); !started.ok()) {
    SayWhyItStops(started.message());
  } else {
    Wait();
    code = Shutdown();
  }
  // Ends the waiter when no signal did (a fatal error, or Start failed): the
  // signal is blocked in every thread and the waiter's sigwait takes it, so
  // it terminates nothing (what bugprone-bad-signal-to-kill-thread fears).
  // NOLINTNEXTLINE(bugprone-bad-signal-to-kill-thread)
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  return code;
}

}  // namespace herald::app
