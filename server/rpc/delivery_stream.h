// InspectionService.WatchDeliveries: a live stream of deliveries, outcomes
// and requeues to one watcher (grpcurl or another tool). Events are filtered
// and converted on the engine loop and queued, bounded; a watcher that
// cannot keep up loses events (counted in `dropped`), never slows the
// engine.
#ifndef HERALD_SERVER_RPC_DELIVERY_STREAM_H_
#define HERALD_SERVER_RPC_DELIVERY_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "herald/v1/inspection.grpc.pb.h"
#include "server/engine/dispatcher.h"
#include "server/engine/engine.h"

namespace herald::rpc {

// True when the watcher's request wants `event`.
bool DeliveryWanted(const v1::WatchDeliveriesRequest& request,
                    const engine::DispatchEvent& event);

// `event` as the stream sends it, happening at `now`.
v1::WatchDeliveriesResponse DeliveryMessage(const engine::DispatchEvent& event,
                                            absl::Time now);

// The messages waiting to be written, the first being written. At most
// `capacity` wait; what does not fit is counted and the count goes out with
// the next message that fits.
class DeliveryQueue {
 public:
  explicit DeliveryQueue(size_t capacity) : capacity_(capacity) {}
  // False when the message was dropped.
  bool Push(v1::WatchDeliveriesResponse message);
  bool empty() const { return queue_.empty(); }
  size_t size() const { return queue_.size(); }
  const v1::WatchDeliveriesResponse& front() const { return queue_.front(); }
  void pop_front() { queue_.pop_front(); }

 private:
  const size_t capacity_;
  std::deque<v1::WatchDeliveriesResponse> queue_;
  uint64_t dropped_ = 0;
};

// The write reactor of one WatchDeliveries call; it deletes itself when
// the call is done. Its queue is shared with the engine's subscription,
// which may still deliver an event after the call is done: the event finds
// the stream gone and is dropped.
class DeliveryStream
    : public grpc::ServerWriteReactor<v1::WatchDeliveriesResponse> {
 public:
  static constexpr size_t kMaxQueued = 1000;

  DeliveryStream(engine::Engine* engine, v1::WatchDeliveriesRequest request);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // What the subscription and the reactor share.
  struct Feed {
    absl::Mutex mu;
    // Null once the call is done.
    DeliveryStream* stream ABSL_GUARDED_BY(mu) = nullptr;
    DeliveryQueue queue ABSL_GUARDED_BY(mu){kMaxQueued};
    bool writing ABSL_GUARDED_BY(mu) = false;
    bool closed ABSL_GUARDED_BY(mu) = false;
    bool finished ABSL_GUARDED_BY(mu) = false;
  };

  // On the loop: queues the event if wanted.
  static void OnEvent(Feed* feed, const v1::WatchDeliveriesRequest& request,
                      const engine::DispatchEvent& event);
  static void WriteNextLocked(Feed* feed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(feed->mu);
  static void CloseLocked(Feed* feed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(feed->mu);

  engine::Engine* engine_;
  std::shared_ptr<Feed> feed_;
  uint64_t subscription_ = 0;
};

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_DELIVERY_STREAM_H_
