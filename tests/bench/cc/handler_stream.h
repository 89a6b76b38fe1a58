// bench_handler's work on one handler stream: register, answer every
// delivery, count and time everything in HandlerStats.
#ifndef HERALD_TESTS_BENCH_CC_HANDLER_STREAM_H_
#define HERALD_TESTS_BENCH_CC_HANDLER_STREAM_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "grpcpp/grpcpp.h"
#include "herald/v1/handler.grpc.pb.h"
#include "tests/bench/cc/handler_config.h"
#include "tests/bench/cc/handler_stats.h"

namespace herald::bench {

struct StreamOptions {
  HandlerConfig handler;
  // Sent as changes.status_patch_json of every outcome; empty for none.
  std::string status_patch_json;
  // Never answer.
  bool stall = false;
  // Sleep before each answer.
  int64_t delay_us = 0;
  // Stop after this many acks; 0 for never.
  uint64_t exit_after = 0;
};

enum class StreamEnd {
  kExitAfter,  // The acks asked for arrived.
  kRejected,   // The sidecar did not accept the handler.
  kEnded,      // The stream ended: closed by the sidecar, or cancelled.
};

struct StreamResult {
  StreamEnd end;
  grpc::Status status;  // How the call ended.
};

// Opens a Connect stream on `stub`, registers, and answers deliveries until
// one of StreamEnd happens. Blocks: one thread reads the stream and writes
// each outcome synchronously, so there is no thread hop per message. Another
// thread may call context->TryCancel() to stop it. Messages for people
// (registration, rejections, the first protocol errors) go to `log`.
StreamResult ServeHandlerStream(v1::HandlerService::StubInterface& stub,
                                grpc::ClientContext* context,
                                const StreamOptions& options,
                                HandlerStats* stats, std::ostream& log);

}  // namespace herald::bench

#endif  // HERALD_TESTS_BENCH_CC_HANDLER_STREAM_H_
