// The sidecar's HTTP endpoints for Kubernetes probes:
//   /healthz  liveness: the probe handlers' results as JSON (200 when all
//             succeed, 500 otherwise), reused for 10 s;
//   /readyz   readiness: 200 once every watched resource is listed and every
//             index filled, 503 before;
//   /metrics  Prometheus metrics in the text format (server/metrics).
// One I/O thread serves the connections asynchronously, each read and write
// under a deadline, so a client that connects and stalls holds nothing up;
// the answers are computed on a small pool (a /healthz may wait for probe
// handlers), one request per connection, at most kMaxConnections at once.
#ifndef HERALD_SERVER_RPC_HTTP_ENDPOINTS_H_
#define HERALD_SERVER_RPC_HTTP_ENDPOINTS_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace herald::rpc {

class HttpEndpoints {
 public:
  struct Answer {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
  };
  using Handler = std::function<Answer()>;

  // A request must arrive, and its answer be taken, within this long.
  static constexpr absl::Duration kDeadline = absl::Seconds(10);
  // Connections beyond this many are closed at once.
  static constexpr int kMaxConnections = 64;

  HttpEndpoints(Handler healthz, Handler readyz, Handler metrics);
  ~HttpEndpoints();

  // Listens on "host:port" (port 0 picks one); returns the port. Once:
  // stopped endpoints do not start again.
  absl::StatusOr<int> Start(const std::string& address);
  void Stop();

 private:
  struct Impl;
  class Connection;
  void Accept();
  Answer Route(const std::string& target) const;

  Handler healthz_, readyz_, metrics_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_HTTP_ENDPOINTS_H_
