// What the engine answers about its state: plain values, copied from the
// loop's components (or read from thread-safe ones), that the caller owns.
// The inspection service turns them into its messages; nothing here knows
// about them.
#ifndef HERALD_SERVER_ENGINE_INSPECTION_H_
#define HERALD_SERVER_ENGINE_INSPECTION_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "server/cache/object_store.h"
#include "server/engine/annotation_keys.h"
#include "server/engine/dispatcher.h"
#include "server/engine/processor.h"
#include "server/engine/progress.h"
#include "server/engine/registry.h"
#include "server/kube/discovery.h"
#include "server/kube/resource_watch.h"

namespace herald::engine {

// The sidecar as a whole.
// Leader election as this replica sees it.
struct LeadershipSnapshot {
  // --leader_elect.
  bool enabled = false;
  // This replica delivers and writes: it holds the lease within its renew
  // deadline, or election is off.
  bool leading = true;
  std::string identity;
  // The lease's holder as last observed ("" when released or not read).
  std::string holder;
  std::string lease_namespace;
  std::string lease_name;
};

struct StatusSnapshot {
  std::string version;
  absl::Time started;
  // There are watches, each has listed its objects, and every index is
  // filled (a standby's indices are not: it runs no index handler).
  bool ready = false;
  std::string api_server;
  std::string annotation_prefix;
  LeadershipSnapshot leadership;
};

// One resource watch.
struct ResourceSnapshot {
  // The resource name the watch was started with.
  std::string name;
  kube::ResourceWatch::State state = kube::ResourceWatch::State::kResolving;
  // The resolved resource; valid in state kWatching.
  kube::ResourceInfo resource;
  // Every namespace in scope has been listed at least once.
  bool synced = false;
  kube::ResourceWatch::Health health;
  // The namespace scope as configured.
  std::string scope;
  size_t object_count = 0;
  // InfinitePast before the first event.
  absl::Time last_event = absl::InfinitePast();
};

// The cache of a watched, resolved resource. The store is thread-safe and
// lives as long as the engine: it may be read from any thread without the
// loop.
struct WatchedCache {
  // The resource name the watch was started with.
  std::string name;
  kube::ResourceInfo resource;
  const cache::ObjectStore* store = nullptr;
};

// One registered handler, or one pending handler.
struct HandlerSnapshot {
  std::string handler_id;
  // The resource as the handler registered it ("kopfexamples").
  std::string resource_name;
  // The resolved resource (empty for activities); unset while pending.
  std::optional<kube::ResourceInfo> resource;
  Cause cause = Cause::kUnspecified;
  // Why it is pending; empty for a registered handler.
  std::string pending_reason;
  // Connected processes that serve it.
  uint32_t process_count = 0;
  HandlerStats stats;
  // Delivery-to-outcome latency; unset before the first outcome.
  std::optional<absl::Duration> latency_p50;
  std::optional<absl::Duration> latency_p99;
};

// A connected handler process (one stream).
using ProcessSnapshot = StreamInfo;
// Objects with work, scheduled timers and daemons, as the processor sees
// them.
using QueueSnapshot = Processor::QueueView;
using TimerSnapshot = Processor::TimerView;
using DaemonSnapshot = Processor::DaemonView;

// An index's entries, in key order.
struct IndexSnapshot {
  // As CausePlan (causes.h): a JSON value's destructor may allocate.
  // NOLINTNEXTLINE(bugprone-exception-escape)
  struct Entry {
    nlohmann::json key;
    // One per object entry with this key.
    std::vector<nlohmann::json> values;
  };
  std::vector<Entry> entries;
};

// A handler's progress record on an object, as its annotation holds it.
struct ProgressSnapshot {
  std::string handler_id;
  ProgressRecord record;
};

// What the sidecar keeps about one object besides its body.
struct ObjectStateSnapshot {
  // Unset when the object has no memo.
  std::optional<nlohmann::json> memo;
  // Handlers of the object's resource with a readable record, in
  // registration order.
  std::vector<ProgressSnapshot> progress;
};

// The registered handlers (in id order), then the pending ones (in id
// order), with their counters and how many of `streams` serve each.
std::vector<HandlerSnapshot> SnapshotHandlers(
    const Registry& registry, const std::vector<StreamInfo>& streams,
    const std::map<std::string, HandlerStats>& stats,
    const std::map<std::string, LatencyHistogram>& latencies);

// The progress records in `body`'s annotations of the handlers registered
// for `resource_full_name`. For each handler the first key that holds a
// string counts (v2 before v1); a record that does not decode is left out.
std::vector<ProgressSnapshot> SnapshotProgress(
    const Registry& registry, const AnnotationKeys& keys,
    const std::string& resource_full_name, const nlohmann::json& body);

// An index as Processor::IndexJson writes it ([[key, [values...]], ...]).
IndexSnapshot SnapshotIndex(const nlohmann::json& index_json);

// Reads a watch through its thread-safe accessors; any thread.
ResourceSnapshot SnapshotResource(kube::ResourceWatch& watch);

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_INSPECTION_H_
