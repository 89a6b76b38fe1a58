// herald.v1.HandlerService over gRPC's callback API: one reactor per handler
// process stream, handing every message to the engine.
#ifndef HERALD_SERVER_RPC_HANDLER_SERVICE_H_
#define HERALD_SERVER_RPC_HANDLER_SERVICE_H_

#include "herald/v1/handler.grpc.pb.h"
#include "server/engine/engine.h"

namespace herald::rpc {

class HandlerService final : public v1::HandlerService::CallbackService {
 public:
  explicit HandlerService(engine::Engine* engine) : engine_(engine) {}

  grpc::ServerBidiReactor<v1::ConnectRequest, v1::ConnectResponse>* Connect(
      grpc::CallbackServerContext* context) override;

 private:
  engine::Engine* engine_;
};

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_HANDLER_SERVICE_H_
