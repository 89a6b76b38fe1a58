#include "server/rpc/delivery_stream.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "server/rpc/object_filter.h"
#include "server/runtime/proto_time.h"
#include "server/session/wire.h"

namespace herald::rpc {

bool DeliveryWanted(const v1::WatchDeliveriesRequest& request,
                    const engine::DispatchEvent& event) {
  const engine::Delivery& d = *event.delivery;
  if (request.outcomes_only() &&
      event.kind != engine::DispatchEvent::Kind::kOutcome) {
    return false;
  }
  if (!request.handler_id().empty() && request.handler_id() != d.handler_id) {
    return false;
  }
  const v1::ObjectFilter& f = request.filter();
  if (!f.namespace_().empty() && f.namespace_() != d.ns) return false;
  if (!f.name().empty() && f.name() != d.name) return false;
  if (!f.resource().empty()) {
    if (d.resource == nullptr) return false;
    kube::ResourceInfo r;
    r.group = d.resource->group;
    r.version = d.resource->version;
    r.plural = d.resource->plural;
    r.kind = d.resource->kind;
    if (!NamesResource(r, "", f.resource())) return false;
  }
  return true;
}

v1::WatchDeliveriesResponse DeliveryMessage(const engine::DispatchEvent& event,
                                            absl::Time now) {
  using Kind = engine::DispatchEvent::Kind;
  const engine::Delivery& d = *event.delivery;
  v1::WatchDeliveriesResponse m;
  *m.mutable_time() = runtime::ToProtoTime(now);
  m.set_kind(event.kind == Kind::kDelivery  ? "delivery"
             : event.kind == Kind::kOutcome ? "outcome"
                                            : "requeue");
  m.set_delivery_id(engine::DeliveryName(d.id));
  m.set_handler_id(d.handler_id);
  m.set_cause(static_cast<v1::Cause>(d.cause));
  session::RefsToWire(d, m.mutable_resource(), m.mutable_object());
  m.set_stream_id(event.stream == 0 ? "" : engine::StreamName(event.stream));
  if (event.outcome != nullptr) {
    m.set_status(std::string(engine::OutcomeStatusName(event.outcome->status)));
    m.set_message(event.outcome->message);
    *m.mutable_latency() = runtime::ToProtoDuration(event.latency);
  }
  return m;
}

bool DeliveryQueue::Push(v1::WatchDeliveriesResponse message) {
  if (queue_.size() >= capacity_) {
    ++dropped_;
    return false;
  }
  message.set_dropped(dropped_);
  dropped_ = 0;
  queue_.push_back(std::move(message));
  return true;
}

DeliveryStream::DeliveryStream(engine::Engine* engine,
                               v1::WatchDeliveriesRequest request)
    : engine_(engine), feed_(std::make_shared<Feed>()) {
  Feed* feed = feed_.get();
  {
    absl::MutexLock lock(&feed->mu);
    feed->stream = this;
  }
  subscription_ = engine_->Subscribe(
      [feed = feed_, request = std::move(request)](
          const engine::DispatchEvent& e) { OnEvent(feed.get(), request, e); });
}

void DeliveryStream::OnEvent(Feed* feed,
                             const v1::WatchDeliveriesRequest& request,
                             const engine::DispatchEvent& event) {
  if (!DeliveryWanted(request, event)) return;
  v1::WatchDeliveriesResponse m = DeliveryMessage(event, event.at);
  absl::MutexLock lock(&feed->mu);
  if (feed->stream == nullptr || feed->closed) return;
  if (!feed->queue.Push(std::move(m))) return;
  WriteNextLocked(feed);
}

void DeliveryStream::OnWriteDone(bool ok) {
  Feed* feed = feed_.get();
  absl::MutexLock lock(&feed->mu);
  feed->queue.pop_front();
  feed->writing = false;
  if (!ok) {
    CloseLocked(feed);
    return;
  }
  WriteNextLocked(feed);
}

void DeliveryStream::OnCancel() {
  Feed* feed = feed_.get();
  absl::MutexLock lock(&feed->mu);
  CloseLocked(feed);
}

void DeliveryStream::OnDone() {
  engine_->Unsubscribe(subscription_);
  {
    // An event already on its way finds the stream gone.
    Feed* feed = feed_.get();
    absl::MutexLock lock(&feed->mu);
    feed->stream = nullptr;
  }
  delete this;
}

void DeliveryStream::CloseLocked(Feed* feed) {
  feed->closed = true;
  if (!feed->writing && !feed->finished) {
    feed->finished = true;
    feed->stream->Finish(grpc::Status::OK);
  }
}

void DeliveryStream::WriteNextLocked(Feed* feed) {
  if (feed->writing) return;
  if (feed->closed) {
    CloseLocked(feed);
    return;
  }
  if (feed->queue.empty()) return;
  feed->writing = true;
  feed->stream->StartWrite(&feed->queue.front());
}

}  // namespace herald::rpc
