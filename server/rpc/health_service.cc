#include "server/rpc/health_service.h"

#include <utility>

namespace herald::rpc {
namespace {

using grpc::health::v1::HealthCheckResponse;

// Sends the status once, then holds the stream open until the client goes.
class WatchReactor : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  explicit WatchReactor(HealthCheckResponse::ServingStatus status) {
    response_.set_status(status);
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) Finish(grpc::Status::OK);
  }
  void OnCancel() override { Finish(grpc::Status::OK); }
  void OnDone() override { delete this; }

 private:
  HealthCheckResponse response_;
};

}  // namespace

HealthService::HealthService(std::set<std::string> services)
    : services_(std::move(services)) {}

HealthCheckResponse::ServingStatus HealthService::StatusOf(
    const std::string& service) const {
  if (service.empty() ||
      service == grpc::health::v1::Health::service_full_name() ||
      services_.count(service) > 0) {
    return HealthCheckResponse::SERVING;
  }
  return HealthCheckResponse::SERVICE_UNKNOWN;
}

grpc::ServerUnaryReactor* HealthService::Check(
    grpc::CallbackServerContext* context,
    const grpc::health::v1::HealthCheckRequest* request,
    HealthCheckResponse* response) {
  auto* reactor = context->DefaultReactor();
  const auto status = StatusOf(request->service());
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 "unknown service: " + request->service()));
    return reactor;
  }
  response->set_status(status);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    grpc::CallbackServerContext* /*context*/,
    const grpc::health::v1::HealthCheckRequest* request) {
  return new WatchReactor(StatusOf(request->service()));
}

}  // namespace herald::rpc
