// One handler process's stream, between gRPC and the engine: what the
// process may send and when (register first and once, credits of at least
// one, messages within --max_message_bytes, outcomes and interim changes
// naming deliveries the sidecar sent on this stream, each answered once,
// acknowledged as soon as it is read), the translation of every message to
// and from the engine's types (wire.h), and every protocol error the
// process is sent, built and logged here.
//
// The gRPC reactor (server/rpc/handler_service.cc) gives it what it reads,
// on gRPC's thread, and writes what it is given. The session outlives the
// reactor: the engine may still hold it after the stream ended, and what it
// sends then is dropped.
#ifndef HERALD_SERVER_SESSION_HANDLER_SESSION_H_
#define HERALD_SERVER_SESSION_HANDLER_SESSION_H_

#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "herald/v1/handler.pb.h"
#include "server/engine/engine.h"
#include "server/session/wire.h"

namespace herald::session {

class HandlerSession : public WireSink,
                       public std::enable_shared_from_this<HandlerSession> {
 public:
  // Where the session's messages go: the stream's writer, which queues and
  // returns at once.
  using Writer = std::function<void(v1::ConnectResponse)>;

  static std::shared_ptr<HandlerSession> Create(engine::Engine* engine,
                                                std::string peer,
                                                Writer writer);

  // A message the process sent; on the thread that read it.
  void Handle(const v1::ConnectRequest& request);
  // The stream ended: nothing more is written, and the engine requeues what
  // was in flight on it.
  void Close();

  const std::string& name() const { return name_; }

  // engine::StreamSink: the session keeps which deliveries are in flight
  // on its stream, so that it acknowledges an outcome as soon as it reads
  // it, and refuses unknown and repeated ones itself.
  void Deliver(const engine::Delivery& delivery) override;
  void Forget(engine::DeliveryId delivery) override;

 protected:
  void Write(v1::ConnectResponse message) override;

 private:
  HandlerSession(engine::Engine* engine, engine::StreamId stream,
                 std::string peer, Writer writer);

  // Sends a protocol error the session found itself.
  void Refuse(v1::ProtocolErrorCode code, const std::string& delivery_id,
              const std::string& message);
  // An outcome read: acknowledged and handed to the engine when its
  // delivery is in flight here, refused otherwise.
  void TakeOutcome(const v1::Outcome& outcome);

  engine::Engine* const engine_;
  const std::string name_;  // "stream-N", as logs and inspection show it.
  const std::string peer_;
  // Read side only (gRPC reads one message at a time).
  bool registered_ = false;
  absl::Mutex mu_;
  Writer writer_ ABSL_GUARDED_BY(mu_);
  // Deliveries sent on this stream and not answered, and the last answered
  // ones (for DUPLICATE_OUTCOME), oldest first.
  absl::flat_hash_set<engine::DeliveryId> in_flight_ ABSL_GUARDED_BY(mu_);
  std::deque<engine::DeliveryId> recent_done_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<engine::DeliveryId> recent_done_set_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::session

#endif  // HERALD_SERVER_SESSION_HANDLER_SESSION_H_
