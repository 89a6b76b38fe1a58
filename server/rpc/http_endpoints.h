// The sidecar's HTTP endpoints for Kubernetes probes:
//   /healthz  liveness: the probe handlers' results as JSON (200 when all
//             succeed, 500 otherwise), reused for 10 s;
//   /readyz   readiness: 200 once every watched resource is listed and every
//             index filled, 503 before;
//   /metrics  Prometheus metrics in the text format (server/metrics).
// One thread accepts and answers requests one at a time; probes and scrapes
// are cheap and rare.
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

  HttpEndpoints(Handler healthz, Handler readyz, Handler metrics);
  ~HttpEndpoints();

  // Listens on "host:port" (port 0 picks one); returns the port.
  absl::StatusOr<int> Start(const std::string& address);
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Handler healthz_, readyz_, metrics_;
  std::thread thread_;
};

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_HTTP_ENDPOINTS_H_
