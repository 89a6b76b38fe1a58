#include "server/rpc/health_service.h"

namespace herald::rpc {
namespace {

using grpc::health::v1::HealthCheckResponse;

HealthCheckResponse::ServingStatus StatusOf(const std::string& service) {
  if (service.empty() || service == "herald.v1.HandlerService") {
    return HealthCheckResponse::SERVING;
  }
  return HealthCheckResponse::SERVICE_UNKNOWN;
}

// Sends the status once, then holds the stream open until the client goes.
class WatchReactor : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  explicit WatchReactor(const std::string& service) {
    response_.set_status(StatusOf(service));
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
    grpc::CallbackServerContext* context,
    const grpc::health::v1::HealthCheckRequest* request) {
  return new WatchReactor(request->service());
}

}  // namespace herald::rpc
