// What bench_handler measures on its stream: deliveries, acks, and the
// latencies of each delivery's way in (event to handler) and its outcome's
// way back (outcome to ack).
#ifndef HERALD_TESTS_BENCH_CC_HANDLER_STATS_H_
#define HERALD_TESTS_BENCH_CC_HANDLER_STATS_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "tests/bench/cc/samples.h"

namespace herald::bench {

// Counters and samples of one handler stream. Times are passed in, so the
// accounting is testable without a clock. Not thread-safe: one thread reads
// the stream and calls everything.
class HandlerStats {
 public:
  explicit HandlerStats(size_t sample_cap = Samples::kDefaultCap);

  // A delivery arrived at `realtime_ns` (CLOCK_REALTIME); `sent_ns` is the
  // event's production time from its body, if it has one. Returns the event
  // to handler time when known.
  absl::optional<int64_t> OnDelivery(int64_t realtime_ns,
                                     absl::optional<int64_t> sent_ns);
  // The outcome of `delivery_id` is about to be sent, at `monotonic_ns`.
  void OnOutcomeSent(absl::string_view delivery_id, int64_t monotonic_ns,
                     absl::optional<int64_t> event_to_handler_ns);
  // An OutcomeAck arrived. Acks for deliveries not answered here are counted
  // but give no latency sample.
  void OnAck(absl::string_view delivery_id, int64_t monotonic_ns,
             int64_t realtime_ns);
  // A ProtocolError arrived; one naming an answered delivery forgets it,
  // since no ack follows.
  void OnProtocolError(absl::string_view delivery_id);
  void OnStop() { ++stops_; }

  uint64_t deliveries() const { return deliveries_; }
  uint64_t acks() const { return acks_; }
  uint64_t protocol_errors() const { return protocol_errors_; }
  size_t in_flight() const { return in_flight_.size(); }

  // The stats file's JSON: deliveries, acks, protocol_errors, stops,
  // first_ns (first delivery), last_ns (last ack, or last delivery when
  // nothing was acked), without_sent_ns (deliveries lacking the
  // annotation), and the samples in microseconds: event_to_handler_us,
  // outcome_to_ack_us, round_trip_us (the sum of the two, for deliveries
  // with both).
  std::string ToJson() const;

 private:
  struct Answered {
    int64_t sent_monotonic_ns;
    int64_t event_to_handler_ns;  // -1 when unknown.
  };

  absl::flat_hash_map<std::string, Answered> in_flight_;
  Samples event_to_handler_;
  Samples outcome_to_ack_;
  Samples round_trip_;
  uint64_t deliveries_ = 0;
  uint64_t acks_ = 0;
  uint64_t protocol_errors_ = 0;
  uint64_t stops_ = 0;
  uint64_t without_sent_ns_ = 0;
  int64_t first_ns_ = 0;
  int64_t last_delivery_ns_ = 0;
  int64_t last_ack_ns_ = 0;
};

}  // namespace herald::bench

#endif  // HERALD_TESTS_BENCH_CC_HANDLER_STATS_H_
