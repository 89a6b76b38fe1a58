// herald.v1.HandlerService over gRPC's callback API: one reactor per handler
// process stream, handing every message to the engine.
#ifndef HERALD_SERVER_RPC_HANDLER_SERVICE_H_
#define HERALD_SERVER_RPC_HANDLER_SERVICE_H_

#include <cstdint>

#include "herald/v1/handler.grpc.pb.h"
#include "server/engine/engine.h"

namespace herald::rpc {

class HandlerService final : public v1::HandlerService::CallbackService {
 public:
  explicit HandlerService(engine::Engine* engine) : engine_(engine) {}

  // gRPC's own message size limit for a sidecar whose limit is
  // `max_message_bytes`: above it, so that a message a little over ours
  // still arrives and gets a clear protocol error instead of a broken
  // stream. gRPC ends a stream whose message is over this one.
  static int GrpcMessageLimit(uint64_t max_message_bytes);

  grpc::ServerBidiReactor<v1::ConnectRequest, v1::ConnectResponse>* Connect(
      grpc::CallbackServerContext* context) override;

 private:
  engine::Engine* engine_;
};

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_HANDLER_SERVICE_H_
