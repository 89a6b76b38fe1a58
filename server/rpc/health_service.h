// grpc.health.v1.Health: SERVING for the whole server ("") and for every
// service the sidecar serves, as named when it is built, while the sidecar
// runs; NOT_FOUND for any other name.
#ifndef HERALD_SERVER_RPC_HEALTH_SERVICE_H_
#define HERALD_SERVER_RPC_HEALTH_SERVICE_H_

#include <set>
#include <string>

#include "grpc/health/v1/health.grpc.pb.h"

namespace herald::rpc {

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  // `services`: the full names of the services served (this one need not be
  // named: it is always known).
  explicit HealthService(std::set<std::string> services);

  grpc::ServerUnaryReactor* Check(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request,
      grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

 private:
  grpc::health::v1::HealthCheckResponse::ServingStatus StatusOf(
      const std::string& service) const;

  const std::set<std::string> services_;
};

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_HEALTH_SERVICE_H_
