#include "tests/bench/cc/handler_stats.h"

#include "absl/strings/str_cat.h"

namespace herald::bench {

HandlerStats::HandlerStats(size_t sample_cap)
    : event_to_handler_(sample_cap),
      outcome_to_ack_(sample_cap),
      round_trip_(sample_cap) {
  in_flight_.reserve(2048);
}

absl::optional<int64_t> HandlerStats::OnDelivery(
    int64_t realtime_ns, absl::optional<int64_t> sent_ns) {
  if (deliveries_++ == 0) first_ns_ = realtime_ns;
  last_delivery_ns_ = realtime_ns;
  if (!sent_ns) {
    ++without_sent_ns_;
    return absl::nullopt;
  }
  const int64_t latency = realtime_ns - *sent_ns;
  event_to_handler_.Add(latency);
  return latency;
}

void HandlerStats::OnOutcomeSent(absl::string_view delivery_id,
                                 int64_t monotonic_ns,
                                 absl::optional<int64_t> event_to_handler_ns) {
  Answered a{monotonic_ns, event_to_handler_ns.value_or(-1)};
  auto it = in_flight_.find(delivery_id);
  if (it != in_flight_.end()) {
    it->second = a;
  } else {
    in_flight_.emplace(std::string(delivery_id), a);
  }
}

void HandlerStats::OnAck(absl::string_view delivery_id, int64_t monotonic_ns,
                         int64_t realtime_ns) {
  ++acks_;
  last_ack_ns_ = realtime_ns;
  auto it = in_flight_.find(delivery_id);
  if (it == in_flight_.end()) return;
  const int64_t to_ack = monotonic_ns - it->second.sent_monotonic_ns;
  outcome_to_ack_.Add(to_ack);
  if (it->second.event_to_handler_ns >= 0) {
    round_trip_.Add(it->second.event_to_handler_ns + to_ack);
  }
  in_flight_.erase(it);
}

void HandlerStats::OnProtocolError(absl::string_view delivery_id) {
  ++protocol_errors_;
  if (!delivery_id.empty()) {
    auto it = in_flight_.find(delivery_id);
    if (it != in_flight_.end()) in_flight_.erase(it);
  }
}

std::string HandlerStats::ToJson() const {
  std::string out;
  absl::StrAppend(
      &out, "{\"deliveries\": ", deliveries_, ", \"acks\": ", acks_,
      ", \"protocol_errors\": ", protocol_errors_, ", \"stops\": ", stops_,
      ", \"without_sent_ns\": ", without_sent_ns_,
      ", \"first_ns\": ", first_ns_,
      ", \"last_ns\": ", acks_ > 0 ? last_ack_ns_ : last_delivery_ns_,
      ",\n \"event_to_handler_us\": ");
  AppendMicrosArray(event_to_handler_.ns(), &out);
  out.append(",\n \"outcome_to_ack_us\": ");
  AppendMicrosArray(outcome_to_ack_.ns(), &out);
  out.append(",\n \"round_trip_us\": ");
  AppendMicrosArray(round_trip_.ns(), &out);
  out.append("}\n");
  return out;
}

}  // namespace herald::bench
