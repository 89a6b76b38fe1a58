// Spreads deliveries over the handler processes that serve each handler,
// never sending a process more unanswered deliveries than its credits. When a
// process's stream ends, its deliveries in flight go back to the front of
// the queue at once, in the order they were submitted.
//
// Work per event does not grow with what waits: a submission, an outcome or
// a cancellation looks at the front of each handler's queue only (a
// cancelled delivery stays in its queue as a stale entry, dropped when it
// reaches the front), so a thousand deliveries waiting for eight credits cost
// what eight would.
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

#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "herald/v1/handler.pb.h"
#include "server/runtime/event_loop.h"

namespace herald::engine {

// Where a stream's messages go. Implementations queue and return at once.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual void Send(const v1::ConnectResponse& message) = 0;
  // The same, for a message the caller gives up (no copy where the sink
  // can keep it).
  virtual void Send(v1::ConnectResponse&& message) {
    Send(static_cast<const v1::ConnectResponse&>(message));
  }
};

// What the engine does with an outcome (on the engine loop). A non-OK status
// means the outcome was malformed; it goes back to the stream as a
// MALFORMED_JSON protocol error.
using OutcomeCallback = std::function<absl::Status(
    const v1::Outcome& outcome, const std::string& stream_id)>;

// Asked when a delivery's stream ended before it was answered: true puts it
// back at the front of the queue (the owner may mark the delivery first),
// false drops it.
using RequeueCallback = std::function<bool(v1::Delivery* delivery)>;

// What happened to a delivery, for inspection's live stream and latency.
struct DispatchEvent {
  enum class Kind { kDelivery, kOutcome, kRequeue };
  Kind kind;
  const v1::Delivery* delivery;  // Valid during the call only.
  const v1::Outcome* outcome;    // For kOutcome; null otherwise.
  std::string stream_id;
  absl::Duration latency;  // For kOutcome.
  absl::Time at;           // When it happened, on the loop's clock.
};
using DispatchObserver = std::function<void(const DispatchEvent&)>;

// Delivery-to-outcome times of one handler: a histogram with buckets 10%
// apart from 1 us, so that percentiles are within 10%.
class LatencyHistogram {
 public:
  void Add(absl::Duration d);
  // The q-quantile (0 < q <= 1), or zero when empty.
  absl::Duration Quantile(double q) const;
  uint64_t count() const { return count_; }

 private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
};

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

// Not thread-safe: owned by the engine loop. Every entry point checks that
// it runs on the loop's thread (HERALD_ASSERT_ON_LOOP), and reads the time
// (delivery latencies) from the loop's clock.
class Dispatcher {
 public:
  explicit Dispatcher(runtime::EventLoop* loop) : loop_(loop) {}

  void AddStream(const StreamInfo& info, StreamSink* sink);
  // Removes the stream first, then requeues its deliveries in flight.
  void RemoveStream(const std::string& stream_id);
  absl::Status SetCredits(const std::string& stream_id, uint32_t credits);

  // Queues a delivery; it goes out as soon as a process serving its handler
  // has a free credit. `on_outcome` runs on the engine loop when the outcome
  // arrives.
  void Submit(v1::Delivery delivery, OutcomeCallback on_outcome);
  // A long-running delivery (a daemon): goes to the serving process with the
  // fewest long-running deliveries, without taking a credit. `on_requeue`
  // decides whether it goes back to the queue when its stream ends.
  void SubmitLongRunning(v1::Delivery delivery, OutcomeCallback on_outcome,
                         RequeueCallback on_requeue);
  // Forgets a delivery, queued or in flight, without calling its callbacks;
  // a late outcome for it is then UNKNOWN_DELIVERY. False if unknown.
  bool Cancel(const std::string& delivery_id);
  // The stream a delivery is in flight on, or empty.
  std::string StreamOf(const std::string& delivery_id) const;
  // The handler of a delivery in flight on this stream, or null.
  const v1::Delivery* InFlight(const std::string& stream_id,
                               const std::string& delivery_id) const;
  void set_observer(DispatchObserver observer) {
    HERALD_ASSERT_ON_LOOP(loop_);
    observer_ = std::move(observer);
  }
  // Delivery-to-outcome times by handler id.
  const std::map<std::string, LatencyHistogram>& latencies() const {
    HERALD_ASSERT_ON_LOOP(loop_);
    return latencies_;
  }

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
  // Queue entries looked at so far (sent, found waiting for a credit, or
  // dropped as stale): the dispatcher's work, which tests hold to a constant
  // per event.
  uint64_t queue_steps() const {
    HERALD_ASSERT_ON_LOOP(loop_);
    return queue_steps_;
  }
  // Queue entries held, stale ones included: at most about twice the live
  // ones.
  size_t queue_entries() const;
  std::vector<StreamInfo> Streams() const;
  bool HasStreamFor(const std::string& handler_id) const;

 private:
  struct Stream {
    StreamInfo info;
    StreamSink* sink;
    std::set<std::string> handlers;
    // Deliveries in flight, by their sequence number (so in delivery order)
    // -> delivery id.
    std::map<uint64_t, std::string> in_flight;
    // Long-running ones among in_flight: they take no credit.
    std::set<std::string> long_running;
    std::deque<std::string> recent_done;  // For DUPLICATE_OUTCOME.
    std::set<std::string> recent_done_set;
  };
  struct Pending {
    // The order of submission, kept when requeued: ids are strings on the
    // wire, and "d-10" sorts before "d-9".
    uint64_t seq = 0;
    v1::Delivery delivery;
    OutcomeCallback on_outcome;
    RequeueCallback on_requeue;
    bool long_running = false;
    absl::Time sent;
    std::string stream_id;  // While in flight.
  };

  // One handler's queue: entries in order, some stale (cancelled, or
  // replaced by a delivery submitted again under the same id), and the
  // count of live ones.
  struct QueueEntry {
    uint64_t seq;
    std::string delivery_id;
  };
  struct Queue {
    std::deque<QueueEntry> entries;
    size_t live = 0;
  };

  // Submit and SubmitLongRunning: a delivery under an id already known
  // replaces the old one.
  void Accept(v1::Delivery delivery, OutcomeCallback on_outcome,
              RequeueCallback on_requeue, bool long_running);
  void Enqueue(const std::string& handler_id, const std::string& delivery_id,
               const Pending& p, bool front);
  // The delivery an entry stands for, if it is still queued; null if stale.
  Pending* Live(const QueueEntry& e);
  // Drops a queue's stale entries once they outnumber its live ones, so that
  // cancellations behind a waiting delivery do not pile up.
  void Compact(Queue& q);
  void Pump();
  Stream* PickStream(const std::string& handler_id, bool long_running);
  void Notify(DispatchEvent::Kind kind, const Pending& p,
              const v1::Outcome* outcome, absl::Duration latency);

  runtime::EventLoop* loop_;
  std::map<std::string, Stream> streams_;
  // Handler id to its queue.
  std::map<std::string, Queue> queues_;
  // Delivery id to the delivery (queued or in flight).
  absl::node_hash_map<std::string, Pending> deliveries_;
  uint64_t rotation_ = 0;
  uint64_t next_seq_ = 1;
  uint64_t queue_steps_ = 0;
  DispatchObserver observer_;
  std::map<std::string, LatencyHistogram> latencies_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_DISPATCHER_H_
