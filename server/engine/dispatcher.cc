#include "server/engine/dispatcher.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace herald::engine {
namespace {
constexpr size_t kRecentDone = 4096;
constexpr double kBucketGrowth = 1.1;
}  // namespace

void LatencyHistogram::Add(absl::Duration d) {
  const double us = std::max(1.0, absl::ToDoubleMicroseconds(d));
  const size_t b =
      static_cast<size_t>(std::lround(std::log(us) / std::log(kBucketGrowth)));
  if (buckets_.size() <= b) buckets_.resize(b + 1);
  ++buckets_[b];
  ++count_;
}

absl::Duration LatencyHistogram::Quantile(double q) const {
  if (count_ == 0) return absl::ZeroDuration();
  const uint64_t rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * count_)));
  uint64_t seen = 0;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    seen += buckets_[b];
    if (seen >= rank) {
      return absl::Microseconds(std::pow(kBucketGrowth, b));
    }
  }
  return absl::Microseconds(std::pow(kBucketGrowth, buckets_.size() - 1));
}

void Dispatcher::Notify(DispatchEvent::Kind kind, const Pending& p,
                        const Outcome* outcome, absl::Duration latency) {
  if (!observer_) return;
  const absl::Time now = loop_->clock()->Now();
  const absl::Duration waited = kind == DispatchEvent::Kind::kDelivery
                                    ? now - p.queued
                                    : absl::ZeroDuration();
  DispatchEvent e{kind, &p.delivery, outcome, p.stream, latency, now, waited};
  observer_(e);
}

void Dispatcher::AddStream(const StreamInfo& info, StreamSink* sink) {
  HERALD_ASSERT_ON_LOOP(loop_);
  Stream& s = streams_[info.stream];
  s.info = info;
  s.sink = sink;
  s.handlers.insert(info.handler_ids.begin(), info.handler_ids.end());
  Pump();
}

void Dispatcher::RemoveStream(StreamId stream) {
  HERALD_ASSERT_ON_LOOP(loop_);
  auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  std::map<uint64_t, DeliveryId> in_flight = std::move(it->second.in_flight);
  streams_.erase(it);
  // Back to the front of their handlers' queues, in delivery order, unless
  // their owner no longer wants them.
  for (auto r = in_flight.rbegin(); r != in_flight.rend(); ++r) {
    auto d = deliveries_.find(r->second);
    if (d == deliveries_.end()) continue;
    Notify(DispatchEvent::Kind::kRequeue, d->second, nullptr,
           absl::ZeroDuration());
    d->second.stream = 0;
    if (d->second.on_requeue && !d->second.on_requeue(&d->second.delivery)) {
      deliveries_.erase(d);
      continue;
    }
    Enqueue(d->second.delivery.handler_id, r->second, d->second, true);
  }
  Pump();
}

absl::Status Dispatcher::SetCredits(StreamId stream, uint32_t credits) {
  HERALD_ASSERT_ON_LOOP(loop_);
  auto it = streams_.find(stream);
  if (it == streams_.end()) return absl::NotFoundError("unknown stream");
  if (credits == 0) {
    return absl::InvalidArgumentError("credits must be at least 1");
  }
  it->second.info.credits = credits;
  Pump();
  return absl::OkStatus();
}

void Dispatcher::Enqueue(const std::string& handler_id, DeliveryId delivery,
                         Pending& p, bool front) {
  p.queued = loop_->clock()->Now();
  if (on_queued_) on_queued_(p.delivery);
  Queue& q = queues_[handler_id];
  const QueueEntry e{p.seq, delivery};
  if (front) {
    q.entries.push_front(e);
  } else {
    q.entries.push_back(e);
  }
  ++q.live;
}

Dispatcher::Pending* Dispatcher::Live(const QueueEntry& e) {
  auto d = deliveries_.find(e.delivery);
  if (d == deliveries_.end() || d->second.seq != e.seq ||
      d->second.stream != 0) {
    return nullptr;
  }
  return &d->second;
}

void Dispatcher::Compact(Queue& q) {
  constexpr size_t kSlack = 64;
  if (q.entries.size() <= 2 * q.live + kSlack) return;
  // Amortized: at least live + kSlack cancellations since the last compaction
  // pay for looking at every entry once.
  std::deque<QueueEntry> kept;
  for (const QueueEntry& e : q.entries) {
    ++queue_steps_;
    if (Live(e) != nullptr) kept.push_back(e);
  }
  q.entries.swap(kept);
}

void Dispatcher::Submit(Delivery delivery, OutcomeCallback on_outcome) {
  HERALD_ASSERT_ON_LOOP(loop_);
  Accept(std::move(delivery), std::move(on_outcome), nullptr, false);
}

void Dispatcher::SubmitLongRunning(Delivery delivery,
                                   OutcomeCallback on_outcome,
                                   RequeueCallback on_requeue) {
  HERALD_ASSERT_ON_LOOP(loop_);
  Accept(std::move(delivery), std::move(on_outcome), std::move(on_requeue),
         true);
}

void Dispatcher::Accept(Delivery delivery, OutcomeCallback on_outcome,
                        RequeueCallback on_requeue, bool long_running) {
  const DeliveryId id = delivery.id;
  const std::string handler = delivery.handler_id;
  if (deliveries_.contains(id)) Cancel(id);  // The new one replaces it.
  Pending& p = deliveries_[id];
  p.seq = next_seq_++;
  p.delivery = std::move(delivery);
  p.on_outcome = std::move(on_outcome);
  p.on_requeue = std::move(on_requeue);
  p.long_running = long_running;
  Enqueue(handler, id, p, false);
  Pump();
}

bool Dispatcher::Cancel(DeliveryId delivery) {
  HERALD_ASSERT_ON_LOOP(loop_);
  auto d = deliveries_.find(delivery);
  if (d == deliveries_.end()) return false;
  Queue* queue = nullptr;
  if (d->second.stream == 0) {
    // Queued: its entry goes stale where it is, and is dropped when it
    // reaches the front (or the queue is compacted), instead of being
    // searched for now.
    auto q = queues_.find(d->second.delivery.handler_id);
    if (q != queues_.end()) {
      queue = &q->second;
      if (queue->live > 0) --queue->live;
    }
  } else if (auto s = streams_.find(d->second.stream); s != streams_.end()) {
    s->second.in_flight.erase(d->second.seq);
    s->second.long_running.erase(delivery);
    s->second.sink->Forget(delivery);
  }
  deliveries_.erase(d);
  if (queue != nullptr) Compact(*queue);
  Pump();
  return true;
}

StreamId Dispatcher::StreamOf(DeliveryId delivery) const {
  HERALD_ASSERT_ON_LOOP(loop_);
  auto d = deliveries_.find(delivery);
  return d == deliveries_.end() ? 0 : d->second.stream;
}

const Delivery* Dispatcher::InFlight(StreamId stream,
                                     DeliveryId delivery) const {
  HERALD_ASSERT_ON_LOOP(loop_);
  auto d = deliveries_.find(delivery);
  if (d == deliveries_.end() || stream == 0 || d->second.stream != stream) {
    return nullptr;
  }
  return &d->second.delivery;
}

Dispatcher::Stream* Dispatcher::PickStream(const std::string& handler_id,
                                           bool long_running) {
  // The stream serving the handler with the most free credits; ties go
  // round-robin so that equal processes share the load. Long-running
  // deliveries take no credit: they go where the fewest of them run.
  Stream* best = nullptr;
  int64_t best_free = 0;
  size_t n = streams_.size();
  if (n == 0) return nullptr;
  size_t start = rotation_++ % n;
  auto it = streams_.begin();
  std::advance(it, start);
  for (size_t i = 0; i < n; ++i, ++it) {
    if (it == streams_.end()) it = streams_.begin();
    Stream& s = it->second;
    if (!s.handlers.count(handler_id)) continue;
    const int64_t lr = static_cast<int64_t>(s.long_running.size());
    int64_t free = long_running
                       ? std::numeric_limits<int32_t>::max() - lr
                       : static_cast<int64_t>(s.info.credits) -
                             (static_cast<int64_t>(s.in_flight.size()) - lr);
    if (free > best_free) {
      best = &s;
      best_free = free;
    }
  }
  return best;
}

void Dispatcher::Resume() {
  HERALD_ASSERT_ON_LOOP(loop_);
  Pump();
}

void Dispatcher::Pump() {
  // One pass: sending only takes credits, so a queue found waiting stays
  // waiting until the next event.
  for (auto& [handler, queue] : queues_) {
    auto& entries = queue.entries;
    while (!entries.empty()) {
      ++queue_steps_;
      Pending* p = Live(entries.front());
      if (p == nullptr) {
        entries.pop_front();
        continue;
      }
      if (gate_ && !gate_(p->delivery)) break;
      Stream* s = PickStream(handler, p->long_running);
      if (s == nullptr) break;
      const DeliveryId id = entries.front().delivery;
      entries.pop_front();
      --queue.live;
      s->in_flight[p->seq] = id;
      if (p->long_running) s->long_running.insert(id);
      p->stream = s->info.stream;
      p->sent = loop_->clock()->Now();
      s->sink->Deliver(p->delivery);
      Notify(DispatchEvent::Kind::kDelivery, *p, nullptr, absl::ZeroDuration());
    }
  }
}

absl::Status Dispatcher::OnOutcome(StreamId stream, const Outcome& outcome,
                                   StreamError* code) {
  HERALD_ASSERT_ON_LOOP(loop_);
  auto sit = streams_.find(stream);
  if (sit == streams_.end()) {
    *code = StreamError::kNotRegistered;
    return absl::FailedPreconditionError("the stream is not registered");
  }
  Stream& s = sit->second;
  const DeliveryId id = outcome.delivery_id;
  auto d = deliveries_.find(id);
  if (d == deliveries_.end() || d->second.stream != stream) {
    if (s.recent_done_set.contains(id)) {
      *code = StreamError::kDuplicateOutcome;
      return absl::FailedPreconditionError(
          absl::StrCat("delivery '", DeliveryName(id),
                       "' was already answered on this stream"));
    }
    *code = StreamError::kUnknownDelivery;
    return absl::FailedPreconditionError(absl::StrCat(
        "delivery '", DeliveryName(id), "' is not in flight on this stream"));
  }
  s.in_flight.erase(d->second.seq);
  s.long_running.erase(id);
  s.recent_done.push_back(id);
  s.recent_done_set.insert(id);
  if (s.recent_done.size() > kRecentDone) {
    s.recent_done_set.erase(s.recent_done.front());
    s.recent_done.pop_front();
  }
  const absl::Duration latency = loop_->clock()->Now() - d->second.sent;
  latencies_[d->second.delivery.handler_id].Add(latency);
  Notify(DispatchEvent::Kind::kOutcome, d->second, &outcome, latency);
  OutcomeCallback cb = std::move(d->second.on_outcome);
  deliveries_.erase(d);
  absl::Status result;
  if (cb) result = cb(outcome, stream);
  Pump();
  if (!result.ok()) *code = StreamError::kMalformedJson;
  return result;
}

StreamSink* Dispatcher::Sink(StreamId stream) const {
  HERALD_ASSERT_ON_LOOP(loop_);
  auto it = streams_.find(stream);
  return it == streams_.end() ? nullptr : it->second.sink;
}

size_t Dispatcher::queued() const {
  HERALD_ASSERT_ON_LOOP(loop_);
  size_t n = 0;
  for (const auto& [h, q] : queues_) n += q.live;
  return n;
}

size_t Dispatcher::queue_entries() const {
  HERALD_ASSERT_ON_LOOP(loop_);
  size_t n = 0;
  for (const auto& [h, q] : queues_) n += q.entries.size();
  return n;
}

size_t Dispatcher::queued_for(const std::string& handler_id) const {
  HERALD_ASSERT_ON_LOOP(loop_);
  auto it = queues_.find(handler_id);
  return it == queues_.end() ? 0 : it->second.live;
}

bool Dispatcher::HasStreamFor(const std::string& handler_id) const {
  HERALD_ASSERT_ON_LOOP(loop_);
  for (const auto& [id, s] : streams_) {
    if (s.handlers.count(handler_id)) return true;
  }
  return false;
}

size_t Dispatcher::stream_count() const {
  HERALD_ASSERT_ON_LOOP(loop_);
  return streams_.size();
}

uint64_t Dispatcher::free_credits() const {
  HERALD_ASSERT_ON_LOOP(loop_);
  uint64_t n = 0;
  for (const auto& [id, s] : streams_) {
    const size_t taken = s.in_flight.size() - s.long_running.size();
    if (s.info.credits > taken) n += s.info.credits - taken;
  }
  return n;
}

std::map<std::string, size_t> Dispatcher::QueuedByResource() const {
  HERALD_ASSERT_ON_LOOP(loop_);
  std::map<std::string, size_t> out;
  for (const auto& [id, p] : deliveries_) {
    if (p.stream == 0 && p.delivery.resource != nullptr) {
      ++out[p.delivery.resource->FullName()];
    }
  }
  return out;
}

std::vector<StreamInfo> Dispatcher::Streams() const {
  HERALD_ASSERT_ON_LOOP(loop_);
  std::vector<StreamInfo> out;
  for (const auto& [id, s] : streams_) {
    StreamInfo info = s.info;
    info.in_flight.clear();
    for (const auto& [seq, d] : s.in_flight) info.in_flight.push_back(d);
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace herald::engine
