// What the engine sends to handler processes and what it takes back, in its
// own types: a registration, a delivery, an outcome with its changes already
// parsed, and the interface of a handler process's stream. The session layer
// (server/session) translates these to and from herald.v1 messages; the
// engine never sees the wire.
#ifndef HERALD_SERVER_ENGINE_DELIVERY_H_
#define HERALD_SERVER_ENGINE_DELIVERY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "nlohmann/json.hpp"
#include "server/cache/object_store.h"
#include "server/engine/handler_spec.h"
#include "server/engine/handler_types.h"
#include "server/kube/discovery.h"

namespace herald::engine {

// Streams and deliveries are numbered from 1 within a sidecar's run; 0 is
// none. Logs, inspection and the wire name them "stream-N" and "d-N".
using StreamId = uint64_t;
using DeliveryId = uint64_t;
std::string StreamName(StreamId id);
std::string DeliveryName(DeliveryId id);

// Work for one handler on one object (or on none, for activities).
struct Delivery {
  DeliveryId id = 0;
  std::string handler_id;
  Cause cause = Cause::kUnspecified;
  // The object's resource and identity; null and empty for activities.
  std::shared_ptr<const kube::ResourceInfo> resource;
  std::string ns, name, uid, resource_version;
  // The object's body, shared with the cache: never copied until it is
  // written to the stream. Null for activities.
  std::shared_ptr<const cache::CachedObject> object;
  // Updates: the essences and the diff; field handlers: the field's values
  // and the diff inside it. Empty when there are none.
  std::string old_json, new_json, diff_json;
  uint32_t retry = 0;
  absl::optional<absl::Time> started;
  std::string memo_json;
  // The indices the handler asked for, as their JSON text.
  std::map<std::string, std::string> indices_json;
  // Raw events: "ADDED", "MODIFIED" or "DELETED".
  std::string event_type;
  std::vector<std::string> done_subhandler_ids;
  // Daemons: restarted after its process went away.
  bool restarted = false;
};

// A Kubernetes Event a handler asks for, about its object.
struct EventRecord {
  EventType type = EventType::kUnspecified;
  std::string reason;
  std::string message;
};

// Changes a handler asks for, parsed: merge patches as JSON objects (empty
// objects for none) and Events.
struct Changes {
  nlohmann::json patch = nlohmann::json::object();
  nlohmann::json status_patch = nlohmann::json::object();
  nlohmann::json memo_patch = nlohmann::json::object();
  std::vector<EventRecord> events;
};

// How one sub-handler ended.
struct ChildOutcome {
  std::string id;
  OutcomeStatus status = OutcomeStatus::kUnspecified;
  std::string message;
  absl::optional<absl::Duration> delay;
};

// The answer to one delivery.
struct Outcome {
  DeliveryId delivery_id = 0;
  OutcomeStatus status = OutcomeStatus::kUnspecified;
  std::string message;
  absl::optional<absl::Duration> delay;
  // The handler's result (null for none).
  nlohmann::json result = nullptr;
  Changes changes;
  std::vector<ChildOutcome> children;
  // Set when a JSON field of the outcome could not be taken: the outcome
  // then counts as an unexpected error, and neither its result nor its
  // changes are taken (both are left empty).
  absl::Status malformed;
};

// Protocol errors the engine reports on a stream.
enum class StreamError {
  kNotRegistered,
  kUnknownDelivery,
  kDuplicateOutcome,
  kMalformedJson,
  kPatchRejected,
  kInvalidArgument,
};

// A handler as a process registered it: its spec, or why the session could
// not read it (its id and the reason its rejection gives).
struct SpecEntry {
  std::string id;
  absl::StatusOr<HandlerSpec> spec;
};

// A handler process's registration.
struct Registration {
  std::string process_name;
  std::string client;
  uint32_t credits = 0;
  std::vector<SpecEntry> handlers;
};

// The answer to a registration.
struct RegistrationAnswer {
  struct Entry {
    std::string handler_id;
    std::string reason;
  };
  std::vector<std::string> accepted;
  std::vector<Entry> rejected;
  std::vector<Entry> pending;
};

// A handler process's stream as the engine sees it. Implementations queue
// and return at once; a stream that has ended drops what it is given.
// Outcomes are acknowledged by the stream itself, on the thread that read
// them (server/session), not by the engine.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual void Registered(const RegistrationAnswer& answer) = 0;
  virtual void Deliver(const Delivery& delivery) = 0;
  // The engine no longer waits for the outcome of `delivery`, which was
  // sent on this stream (a daemon released, a probe abandoned): a late
  // outcome is an unknown delivery.
  virtual void Forget(DeliveryId delivery) {}
  // Asks the process to stop a running delivery (politely, or by force).
  virtual void Stop(DeliveryId delivery, StopReason reason, bool force) = 0;
  // `delivery` is 0 when the error concerns none.
  virtual void Error(StreamError code, DeliveryId delivery,
                     const std::string& message) = 0;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_DELIVERY_H_
