// The handler protocol's messages (herald.v1) to and from the engine's own
// types (server/engine/delivery.h). Every JSON field a handler process sends
// is parsed here, on the thread that read it, so the engine loop gets values
// it can take as they are; and every message the sidecar sends a process is
// built here.
#ifndef HERALD_SERVER_SESSION_WIRE_H_
#define HERALD_SERVER_SESSION_WIRE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "herald/v1/handler.pb.h"
#include "server/engine/delivery.h"

namespace herald::session {

// "d-12" -> 12; nullopt for anything the sidecar never names a delivery.
absl::optional<engine::DeliveryId> ParseDeliveryId(absl::string_view text);

// A delivery's resource and object references (none for activities).
void RefsToWire(const engine::Delivery& delivery, v1::ResourceRef* resource,
                v1::ObjectRef* object);

// A delivery as the process receives it. Writes into `out` (cleared first),
// so a caller may reuse one message.
void DeliveryToWire(const engine::Delivery& delivery, v1::Delivery* out);

// An outcome with its JSON fields parsed: patches and the memo patch must be
// JSON objects (or empty), the result JSON (or empty: null). When one is
// not, `malformed` says which and where, and neither result nor changes are
// taken. The delivery id is the caller's (see ParseDeliveryId).
engine::Outcome OutcomeFromWire(const v1::Outcome& outcome,
                                engine::DeliveryId delivery);

// A registration, its specs converted (SpecFromWire): a spec that cannot be
// read is an entry with the reason, which the engine rejects.
engine::Registration RegistrationFromWire(const v1::Register& request);

// Changes alone (interim changes): InvalidArgument naming the field.
absl::StatusOr<engine::Changes> ChangesFromWire(
    const v1::ObjectChanges& changes);

// The messages the sidecar sends.
v1::ConnectResponse RegisteredMessage(const engine::RegistrationAnswer& answer,
                                      engine::StreamId stream,
                                      uint64_t max_message_bytes,
                                      const std::string& version);
v1::ConnectResponse AckMessage(engine::DeliveryId delivery);
v1::ConnectResponse StopMessage(engine::DeliveryId delivery,
                                engine::StopReason reason, bool force);
// `delivery_id` as the process named it (empty for none).
v1::ConnectResponse ProtocolErrorMessage(v1::ProtocolErrorCode code,
                                         const std::string& delivery_id,
                                         const std::string& message);
v1::ProtocolErrorCode WireCode(engine::StreamError code);

// An engine::StreamSink that writes herald.v1 messages: what a handler
// process's stream (and a test standing in for one) implements `Write` for.
class WireSink : public engine::StreamSink {
 public:
  WireSink(engine::StreamId stream, uint64_t max_message_bytes,
           std::string version)
      : stream_(stream),
        max_message_bytes_(max_message_bytes),
        version_(std::move(version)) {}

  void Registered(const engine::RegistrationAnswer& answer) override;
  void Deliver(const engine::Delivery& delivery) override;
  void Stop(engine::DeliveryId delivery, engine::StopReason reason,
            bool force) override;
  void Error(engine::StreamError code, engine::DeliveryId delivery,
             const std::string& message) override;

  engine::StreamId stream() const { return stream_; }

 protected:
  virtual void Write(v1::ConnectResponse message) = 0;

 private:
  const engine::StreamId stream_;
  const uint64_t max_message_bytes_;
  const std::string version_;
};

}  // namespace herald::session

#endif  // HERALD_SERVER_SESSION_WIRE_H_
