// The sidecar assembled: the Kubernetes client, discovery, the engine, the
// HTTP endpoints and the gRPC server (handler, inspection and health
// services, reflection), started and stopped in order.
//
//   herald::app::App app(options);
//   return app.Run();  // Until SIGINT or SIGTERM; the exit code.
#ifndef HERALD_SERVER_APP_APP_H_
#define HERALD_SERVER_APP_APP_H_

#include <atomic>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server.h"
#include "server/app/options.h"
#include "server/election/leader_elector.h"
#include "server/election/lease.h"
#include "server/engine/engine.h"
#include "server/kube/api_client.h"
#include "server/kube/discovery.h"
#include "server/kube/watcher.h"
#include "server/kube/write_gate.h"
#include "server/metrics/herald_metrics.h"
#include "server/rpc/handler_service.h"
#include "server/rpc/health_service.h"
#include "server/rpc/http_endpoints.h"
#include "server/rpc/inspection_service.h"

namespace herald::app {

// Why the sidecar stops on an error or cannot start: "herald: <message>" on
// stderr, or an error line of logger "main" in the JSON log format.
void SayWhyItStops(absl::string_view message);

// Why the sidecar stops.
enum class StopReason {
  kNone,       // Not asked to stop.
  kSigint,     // SIGINT.
  kSigterm,    // SIGTERM.
  kFatal,      // The engine cannot go on (a startup handler failed for
               // good, or the leader lost its lease).
  kRequested,  // Stop() from the program itself.
};

class App {
 public:
  explicit App(AppOptions options);
  // Shuts down what Start started (see Shutdown).
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Checks the options (ValidateAppOptions), applies --log_level, reads the
  // cluster config, then starts the engine (watching --resource, with the
  // --index handlers), the HTTP endpoints (--health_listen), and the gRPC
  // server on --socket (given --socket_group and --socket_mode) and
  // --listen. An error names what failed (the flag and value, the kubeconfig
  // file and field, the address); whatever had started is stopped again.
  // Call once.
  absl::Status Start();

  // Makes Wait return; the first reason given is kept. Any thread, any time
  // (before Start too).
  void Stop(StopReason reason);
  // Blocks until Stop; its reason.
  StopReason Wait();

  // Stops in the order the handler streams need: the engine drains within
  // --stop_wait (daemons told to stop, cleanup handlers run, while the
  // handler streams are still open); the HTTP endpoints stop; the gRPC
  // server shuts down, cancelling the handler streams after a moment for
  // the last acks (clients reconnect to the next sidecar); the engine stops
  // its watches and its loop; the socket file is removed. Returns the exit
  // code: 1 after a fatal error, else 0. With --leader_elect, the writes
  // still in flight end and the lease is released last (a leader that lost
  // its lease exits 1 and releases nothing). Idempotent.
  int Shutdown();

  // The whole life of the sidecar: Start, Wait for SIGINT, SIGTERM or a
  // fatal error, Shutdown. Returns the exit code: 2 when Start fails (its
  // error printed as "herald: <error>"), else Shutdown's. SIGINT and SIGTERM
  // are blocked in the calling thread (and stay blocked), so that the
  // threads started inherit that and the signals go to the one thread that
  // waits for them: call it before starting other threads.
  int Run();

  // After a successful Start: the TCP port of --listen and of
  // --health_listen (0 when not listening there).
  int listen_port() const { return listen_port_; }
  int health_port() const { return health_port_; }
  // With --leader_elect, after Start: the election (Leading(), Status());
  // null without it. It reports to metrics() as it acquires and loses.
  election::LeaderElector* elector() { return elector_.get(); }

  // The sidecar's metrics, served on /metrics at --health_listen. Leader
  // election reports through metrics().SetLeader(lease name, leading). Any
  // thread; lives as long as the App.
  metrics::HeraldMetrics& metrics() { return metrics_; }

 private:
  // Starts the gRPC server and sets up the socket file.
  absl::Status StartServer();
  // After a failed Start: stops what had started, without draining.
  void Abandon();

  const AppOptions options_;
  // Before everything that counts into it, so that it outlives them.
  metrics::HeraldMetrics metrics_;
  std::unique_ptr<kube::WatchHandler> log_events_;
  // --leader_elect: the gate the engine's writes pass (open while the lease
  // is held), the election's own client (its renewals never wait behind the
  // engine's writes), the Lease and the elector.
  std::unique_ptr<kube::WriteGate> write_gate_;
  std::unique_ptr<kube::ApiClient> election_api_;
  std::unique_ptr<election::Lease> lease_;
  std::unique_ptr<election::LeaderElector> elector_;
  std::unique_ptr<kube::ApiClient> api_;
  std::unique_ptr<kube::Discovery> discovery_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<rpc::HttpEndpoints> endpoints_;
  std::unique_ptr<rpc::HandlerService> handler_service_;
  std::unique_ptr<rpc::HealthService> health_service_;
  std::unique_ptr<rpc::InspectionService> inspection_service_;
  std::unique_ptr<grpc::Server> server_;
  int listen_port_ = 0;
  int health_port_ = 0;
  bool started_ = false;
  bool shut_down_ = false;
  // Set by a fatal error, whenever it comes: the exit code is then 1.
  std::atomic<bool> fatal_{false};

  absl::Mutex mu_;
  StopReason stop_reason_ ABSL_GUARDED_BY(mu_) = StopReason::kNone;
};

}  // namespace herald::app

#endif  // HERALD_SERVER_APP_APP_H_
