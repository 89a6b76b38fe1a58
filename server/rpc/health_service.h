// grpc.health.v1.Health: SERVING for the whole server ("") and for
// herald.v1.HandlerService while the sidecar runs.
#ifndef HERALD_SERVER_RPC_HEALTH_SERVICE_H_
#define HERALD_SERVER_RPC_HEALTH_SERVICE_H_

#include "grpc/health/v1/health.grpc.pb.h"

namespace herald::rpc {

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  grpc::ServerUnaryReactor* Check(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request,
      grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;
};

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_HEALTH_SERVICE_H_
