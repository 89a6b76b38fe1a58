// Spreads deliveries over the handler processes that serve each handler,
// never sending a process more unanswered deliveries than its credits. When a
// process's stream ends, its deliveries in flight go back to the front of
// the queue at once.
//
// Per-object order is the caller's: the engine submits at most one delivery
// per object at a time.
#ifndef HERALD_SERVER_ENGINE_DISPATCHER_H_
#define HERALD_SERVER_ENGINE_DISPATCHER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "herald/v1/handler.pb.h"

namespace herald::engine {

// Where a stream's messages go. Implementations queue and return at once.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual void Send(const v1::ConnectResponse& message) = 0;
};

// What the engine does with an outcome (on the engine loop). A non-OK status
// means the outcome was malformed; it goes back to the stream as a
// MALFORMED_JSON protocol error.
using OutcomeCallback = std::function<absl::Status(
    const v1::Outcome& outcome, const std::string& stream_id)>;

// Counters for inspection.
struct StreamInfo {
  std::string stream_id;
  std::string process_name;
  std::string client;
  std::string peer;
  absl::Time connected;
  uint32_t credits = 0;
  std::vector<std::string> handler_ids;
  std::vector<std::string> in_flight;
};

// Not thread-safe: owned by the engine loop.
class Dispatcher {
 public:
  void AddStream(const StreamInfo& info, StreamSink* sink);
  // Removes the stream first, then requeues its deliveries in flight.
  void RemoveStream(const std::string& stream_id);
  absl::Status SetCredits(const std::string& stream_id, uint32_t credits);

  // Queues a delivery; it goes out as soon as a process serving its handler
  // has a free credit. `on_outcome` runs on the engine loop when the outcome
  // arrives.
  void Submit(v1::Delivery delivery, OutcomeCallback on_outcome);

  // Takes an outcome from a stream. UNKNOWN_DELIVERY or DUPLICATE_OUTCOME
  // errors are returned with their code and change nothing; otherwise the
  // credit is freed and the callback runs; its error, if any, is returned
  // with MALFORMED_JSON.
  absl::Status OnOutcome(const std::string& stream_id,
                         const v1::Outcome& outcome,
                         v1::ProtocolErrorCode* code);

  // Sends a message to one stream, if it is still there.
  void SendTo(const std::string& stream_id, const v1::ConnectResponse& message);

  // True if the delivery is in flight on this stream.
  bool InFlightOn(const std::string& stream_id,
                  const std::string& delivery_id) const;

  size_t queued() const;
  size_t queued_for(const std::string& handler_id) const;
  std::vector<StreamInfo> Streams() const;
  bool HasStreamFor(const std::string& handler_id) const;

 private:
  struct Stream {
    StreamInfo info;
    StreamSink* sink;
    std::set<std::string> handlers;
    std::map<std::string, std::string> in_flight;  // delivery id -> handler id
    std::deque<std::string> recent_done;           // For DUPLICATE_OUTCOME.
    std::set<std::string> recent_done_set;
  };
  struct Pending {
    v1::Delivery delivery;
    OutcomeCallback on_outcome;
  };

  void Pump();
  Stream* PickStream(const std::string& handler_id);

  std::map<std::string, Stream> streams_;
  // Handler id to its queue.
  std::map<std::string, std::deque<std::string>> queues_;
  // Delivery id to the delivery (queued or in flight).
  std::map<std::string, Pending> deliveries_;
  uint64_t rotation_ = 0;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_DISPATCHER_H_
