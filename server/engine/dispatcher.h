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

#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/engine/delivery.h"
#include "server/runtime/event_loop.h"

namespace herald::engine {

// What the engine does with an outcome (on the engine loop). A non-OK status
// means the outcome was malformed; it goes back to the stream as a
// MALFORMED_JSON protocol error.
using OutcomeCallback =
    std::function<absl::Status(const Outcome& outcome, StreamId stream)>;

// Asked when a delivery's stream ended before it was answered: true puts it
// back at the front of the queue (the owner may mark the delivery first),
// false drops it.
using RequeueCallback = std::function<bool(Delivery* delivery)>;

// What happened to a delivery, for inspection's live stream and latency.
struct DispatchEvent {
  enum class Kind { kDelivery, kOutcome, kRequeue };
  Kind kind;
  const Delivery* delivery;  // Valid during the call only.
  const Outcome* outcome;    // For kOutcome; null otherwise.
  StreamId stream = 0;
  absl::Duration latency;  // For kOutcome.
  absl::Time at;           // When it happened, on the loop's clock.
  // For kDelivery: how long it waited in the queue (since it was submitted,
  // or requeued).
  absl::Duration waited;
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
  StreamId stream = 0;
  std::string process_name;
  std::string client;
  std::string peer;
  absl::Time connected;
  uint32_t credits = 0;
  std::vector<std::string> handler_ids;
  std::vector<DeliveryId> in_flight;
};

// Not thread-safe: owned by the engine loop. Every entry point checks that
// it runs on the loop's thread (HERALD_ASSERT_ON_LOOP), and reads the time
// (delivery latencies) from the loop's clock.
class Dispatcher {
 public:
  explicit Dispatcher(runtime::EventLoop* loop) : loop_(loop) {}

  void AddStream(const StreamInfo& info, StreamSink* sink);
  // Removes the stream first, then requeues its deliveries in flight.
  void RemoveStream(StreamId stream);
  absl::Status SetCredits(StreamId stream, uint32_t credits);

  // A fresh delivery id: the engine's deliveries, whoever makes them, are
  // numbered from one sequence.
  DeliveryId NewDeliveryId() { return next_delivery_++; }

  // Queues a delivery; it goes out as soon as a process serving its handler
  // has a free credit. `on_outcome` runs on the engine loop when the outcome
  // arrives.
  void Submit(Delivery delivery, OutcomeCallback on_outcome);
  // A long-running delivery (a daemon): goes to the serving process with the
  // fewest long-running deliveries, without taking a credit. `on_requeue`
  // decides whether it goes back to the queue when its stream ends.
  void SubmitLongRunning(Delivery delivery, OutcomeCallback on_outcome,
                         RequeueCallback on_requeue);
  // Forgets a delivery, queued or in flight, without calling its callbacks;
  // a late outcome for it is then UNKNOWN_DELIVERY. False if unknown.
  bool Cancel(DeliveryId delivery);
  // The stream a delivery is in flight on, or 0.
  StreamId StreamOf(DeliveryId delivery) const;
  // A delivery in flight on this stream, or null.
  const Delivery* InFlight(StreamId stream, DeliveryId delivery) const;
  void set_observer(DispatchObserver observer) {
    HERALD_ASSERT_ON_LOOP(loop_);
    observer_ = std::move(observer);
  }
  // Asked before a queued delivery goes out: false holds it (and its
  // handler's queue behind it) in the queue. Leader election: a standby, or
  // a leader past its renew deadline, delivers nothing but probes. Resume
  // sends what the gate held once it lets it through.
  void set_gate(std::function<bool(const Delivery&)> gate) {
    HERALD_ASSERT_ON_LOOP(loop_);
    gate_ = std::move(gate);
  }
  void Resume();
  // Told of every delivery put in a queue: submitted, or requeued when its
  // stream ended (metrics count them).
  void set_on_queued(std::function<void(const Delivery&)> fn) {
    HERALD_ASSERT_ON_LOOP(loop_);
    on_queued_ = std::move(fn);
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
  absl::Status OnOutcome(StreamId stream, const Outcome& outcome,
                         StreamError* code);

  // A stream's sink, or null when the stream is gone.
  StreamSink* Sink(StreamId stream) const;

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
  size_t stream_count() const;
  // Credits not taken by deliveries in flight, summed over the streams.
  uint64_t free_credits() const;
  // Queued deliveries about objects, by their resource's full name (those
  // of activities are left out). Looks at every delivery: for scrapes, not
  // for each event.
  std::map<std::string, size_t> QueuedByResource() const;

 private:
  struct Stream {
    StreamInfo info;
    StreamSink* sink;
    std::set<std::string> handlers;
    // Deliveries in flight, by their sequence number (so in delivery order)
    // -> delivery id.
    std::map<uint64_t, DeliveryId> in_flight;
    // Long-running ones among in_flight: they take no credit.
    absl::flat_hash_set<DeliveryId> long_running;
    std::deque<DeliveryId> recent_done;  // For DUPLICATE_OUTCOME.
    absl::flat_hash_set<DeliveryId> recent_done_set;
  };
  struct Pending {
    // The order of submission, kept when requeued (a delivery submitted
    // again under its id goes where a new one would).
    uint64_t seq = 0;
    Delivery delivery;
    OutcomeCallback on_outcome;
    RequeueCallback on_requeue;
    bool long_running = false;
    absl::Time queued;  // When it last entered a queue.
    absl::Time sent;
    StreamId stream = 0;  // While in flight.
  };

  // One handler's queue: entries in order, some stale (cancelled, or
  // replaced by a delivery submitted again under the same id), and the
  // count of live ones.
  struct QueueEntry {
    uint64_t seq;
    DeliveryId delivery;
  };
  struct Queue {
    std::deque<QueueEntry> entries;
    size_t live = 0;
  };

  // Submit and SubmitLongRunning: a delivery under an id already known
  // replaces the old one.
  void Accept(Delivery delivery, OutcomeCallback on_outcome,
              RequeueCallback on_requeue, bool long_running);
  // Also stamps `p` with the time it entered the queue.
  void Enqueue(const std::string& handler_id, DeliveryId delivery, Pending& p,
               bool front);
  // The delivery an entry stands for, if it is still queued; null if stale.
  Pending* Live(const QueueEntry& e);
  // Drops a queue's stale entries once they outnumber its live ones, so that
  // cancellations behind a waiting delivery do not pile up.
  void Compact(Queue& q);
  void Pump();
  std::function<bool(const Delivery&)> gate_;
  Stream* PickStream(const std::string& handler_id, bool long_running);
  void Notify(DispatchEvent::Kind kind, const Pending& p,
              const Outcome* outcome, absl::Duration latency);

  runtime::EventLoop* loop_;
  std::map<StreamId, Stream> streams_;
  // Handler id to its queue.
  std::map<std::string, Queue> queues_;
  // Delivery id to the delivery (queued or in flight).
  absl::node_hash_map<DeliveryId, Pending> deliveries_;
  uint64_t rotation_ = 0;
  uint64_t next_seq_ = 1;
  DeliveryId next_delivery_ = 1;
  uint64_t queue_steps_ = 0;
  DispatchObserver observer_;
  std::function<void(const Delivery&)> on_queued_;
  std::map<std::string, LatencyHistogram> latencies_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_DISPATCHER_H_
