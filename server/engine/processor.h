// The engine: turns watch events into handler deliveries and their outcomes
// into patches, with Kopf's semantics (see docs/architecture.md).
//
// Per object, one cycle at a time: the cycle finds the cause (create, update,
// delete, resume) by comparing the object's essence with the diff-base stored
// in its annotations, delivers each due handler of that cause in turn (never
// two deliveries for one object at once), then writes progress, results, the
// handlers' patches and, when the cause is done, the new diff-base, in one
// PATCH (plus one to the status subresource where the resource has one).
// Events that arrive meanwhile are merged into the next cycle, which starts
// from the latest state.
#ifndef HERALD_SERVER_ENGINE_PROCESSOR_H_
#define HERALD_SERVER_ENGINE_PROCESSOR_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/container/node_hash_map.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "server/engine/annotation_keys.h"
#include "server/engine/causes.h"
#include "server/engine/dispatcher.h"
#include "server/engine/essence.h"
#include "server/engine/indices.h"
#include "server/engine/object_writer.h"
#include "server/engine/outcomes.h"
#include "server/engine/progress.h"
#include "server/engine/registry.h"
#include "server/engine/write_run.h"
#include "server/kube/watcher.h"
#include "server/runtime/event_loop.h"

namespace herald::engine {

struct EngineOptions {
  // The prefix of progress and diff-base annotations. "kopf.zalando.org"
  // makes Herald read and write what a Kopf operator does.
  std::string prefix = "herald.dev";
  // The finalizer; empty means "<prefix>/finalizer", or Kopf's own
  // "kopf.zalando.org/KopfFinalizerMarker" with Kopf's prefix.
  std::string finalizer;
  // Also read and write Kopf's v1 annotation keys.
  bool v1_keys = true;
  // A diff-base larger than this is not stored in the annotation (the API
  // server limits all annotations of an object together to 256 KiB): a
  // SHA-256 digest of it is, under "<prefix>/last-handled-digest", and the
  // essence itself is kept in memory for diffs.
  size_t max_diffbase_bytes = 128 * 1024;
  // The operator memo: each object's memo starts as a shallow copy of it.
  nlohmann::json operator_memo = nlohmann::json::object();
};

// Counters per handler, for inspection.
struct HandlerStats {
  uint64_t deliveries = 0;
  uint64_t successes = 0;
  uint64_t temporary_failures = 0;
  uint64_t permanent_failures = 0;

  // Counts a delivery's judged outcome: a success or a skip, a permanent
  // failure, or (anything else) a temporary one.
  void Count(OutcomeStatus status);
};

// Runs on the engine loop. OnEvent and OnListed may be called from any
// thread; every other entry point checks that it runs on the loop's thread
// (HERALD_ASSERT_ON_LOOP).
class Processor : public kube::WatchHandler {
 public:
  Processor(runtime::EventLoop* loop, Registry* registry,
            Dispatcher* dispatcher, ObjectWriter* writer,
            const EngineOptions& options = EngineOptions());

  const std::string& finalizer() const { return finalizer_; }

  // kube::WatchHandler: posts to the loop.
  void OnEvent(const kube::ResourceInfo& resource,
               const kube::WatchEvent& event) override;
  void OnListed(const kube::ResourceInfo& resource,
                const std::string& ns) override;

  // On the loop: an index as [[key, [values...]], ...].
  nlohmann::json IndexJson(const std::string& index) const;
  // True once every index is filled from its resource's initial listing.
  bool IndicesReady() const;

  // On the loop: look at every known object of the resource again (new
  // handlers were registered for it). Index handlers new to the resource
  // index the objects already known.
  void Reprocess(const std::string& resource_full_name);
  // On the loop, at once: takes `objects` (a warm cache's) as a first
  // listing brings them, and, when `listed`, the resource as listed. What a
  // standby that becomes the leader starts from.
  void Adopt(
      const kube::ResourceInfo& resource,
      const std::vector<std::shared_ptr<const cache::CachedObject>>& objects,
      bool listed);

  // On the loop: the operator memo new objects' memos are copied from;
  // startup handlers' memo patches go into it.
  nlohmann::json& operator_memo() {
    HERALD_ASSERT_ON_LOOP(loop_);
    return operator_memo_;
  }
  // True once every index is filled and every resource listed.
  bool Listed(const std::string& resource_full_name) const {
    HERALD_ASSERT_ON_LOOP(loop_);
    return indices_.Listed(resource_full_name);
  }

  // On the loop: changes a running daemon sends before its outcome.
  // NotFound when the delivery is not a running daemon's; InvalidArgument
  // when the changes are malformed.
  absl::Status OnInterimChanges(DeliveryId delivery, const Changes& changes,
                                StreamId stream);
  // On the loop: asks every daemon to stop (the sidecar is shutting down).
  // `released`, if given, is posted to the loop once no daemon is left
  // running (at once when none is).
  void StopAllDaemons(std::function<void()> released = nullptr);
  // Daemons not yet released.
  size_t daemons_running() const {
    HERALD_ASSERT_ON_LOOP(loop_);
    return daemon_deliveries_.size();
  }

  // On the loop, for inspection.
  const std::map<std::string, HandlerStats>& stats() const {
    HERALD_ASSERT_ON_LOOP(loop_);
    return stats_;
  }
  // On the loop: the counters of a handler the engine delivers itself
  // (startup, cleanup and probe handlers).
  HandlerStats& stats_of(const std::string& handler_id) {
    HERALD_ASSERT_ON_LOOP(loop_);
    return stats_[handler_id];
  }

  struct QueueView {
    kube::ResourceInfo resource;
    cache::ObjectKey key;
    DeliveryId delivery = 0;
    std::string handler_id, purpose;
    bool pending = false;
    size_t queued_events = 0;
    absl::Time wake_at = absl::InfiniteFuture();
    bool waiting_for_indices = false;
  };
  struct TimerView {
    kube::ResourceInfo resource;
    cache::ObjectKey key;
    std::string handler_id;
    absl::Time next_run = absl::InfiniteFuture();
    bool due = false;
  };
  struct DaemonView {
    kube::ResourceInfo resource;
    cache::ObjectKey key;
    std::string handler_id, state;
    DeliveryId delivery = 0;
    StreamId stream = 0;
    absl::Time started = absl::InfinitePast();
    absl::Time restart_at = absl::InfiniteFuture();
    uint32_t restarts = 0;
  };
  // Objects with work, scheduled timers and daemons, for inspection.
  std::vector<QueueView> Queues() const;
  std::vector<TimerView> Timers() const;
  std::vector<DaemonView> Daemons() const;
  size_t objects() const {
    HERALD_ASSERT_ON_LOOP(loop_);
    return objects_.size();
  }
  // The sidecar's memo of an object, or null when it has none.
  const nlohmann::json* MemoOf(const std::string& resource_full_name,
                               const cache::ObjectKey& key) const;
  const AnnotationKeys& keys() const { return keys_; }

 private:
  struct Cycle {
    // What DetectCause found: the cause, purpose, essences, diff and
    // handlers of a cause's cycle; a raw-event, index or timer run sets
    // only the cause.
    CausePlan plan;
    std::map<std::string, ProgressRecord> records;
    // Progress of sub-handlers ("parent/child"), by id.
    std::map<std::string, ProgressRecord> child_records;
    std::vector<const Handler*> due;
    size_t next = 0;
    nlohmann::json patch = nlohmann::json::object();
    nlohmann::json status_patch = nlohmann::json::object();
    std::vector<EventRecord> events;
    // Handlers whose own patches are in `patch`, with the streams that sent
    // them (to report a rejected patch).
    std::map<std::string, StreamId> patched_by;
    // For a timer's run: its handler, and when it runs next.
    std::string timer_id;
    absl::Duration timer_next;
    // Sharp: the next run is at the next point of the grid, from the end.
    bool timer_grid = false;
    // For a raw-event run (cause CAUSE_EVENT): the event; its handlers are
    // `due`, delivered one at a time from `next`.
    std::string event_type;
    std::shared_ptr<const cache::CachedObject> event_object;
    // For an index run (cause CAUSE_INDEX): the resourceVersion it indexes.
    std::string index_rv;
    // Tells this cycle from any later one of the object: continuations
    // posted to the loop carry it.
    uint64_t serial = 0;
  };

  struct RawEvent {
    std::string type;
    std::shared_ptr<const cache::CachedObject> object;
  };

  // What an object is doing. Never two deliveries or writes for one object
  // at once: a phase runs alone, and events that arrive meanwhile wait.
  enum class ObjectPhase : uint8_t {
    kIdle,       // Nothing runs; Advance picks what is next.
    kRawEvent,   // Raw-event handlers hear one event, one at a time.
    kIndexing,   // Index handlers compute the latest state's entries.
    kCycle,      // A cause's due handlers, one delivery at a time.
    kTimer,      // One timer handler's run.
    kWriting,    // The run's PATCHes (and Events) are out.
    kFinalizer,  // The finalizer is being added or removed.
  };

  // One timer handler on one object.
  struct TimerState {
    runtime::EventLoop::TimerId id = 0;
    absl::Time at = absl::InfiniteFuture();
    // Due while a cycle ran: runs as soon as the object is free.
    bool pending = false;
    // As in Kopf, failed runs in a row and when the first of them began:
    // the timer's retries and timeout limits count from there, and a run
    // that succeeds or fails for good starts them anew.
    int retries = 0;
    absl::Time first_attempt = absl::InfinitePast();
  };

 public:
  // One daemon handler on one object.
  struct DaemonState {
    enum class Phase {
      kStarting,   // Waits for its initial delay, or for a process.
      kRunning,    // Its delivery is out (or queued for a process).
      kStopping,   // Asked to stop; cancelled after cancellation_backoff.
      kCancelled,  // Cancelled; released after cancellation_timeout.
      kBackoff,    // Ended with an error; restarts after the delay.
      kDone,       // Returned: not restarted while the object matches.
    };
    Phase phase = Phase::kStarting;
    DeliveryId delivery = 0;
    runtime::EventLoop::TimerId timer = 0;
    absl::Time started = absl::InfinitePast();
    absl::Time restart_at = absl::InfiniteFuture();
    uint32_t restarts = 0;
    // As in Kopf, a daemon's attempts count from its start: failed attempts
    // so far, and when the first began (sent as the delivery's retry and
    // started). A daemon started again after it stopped begins anew.
    uint32_t retries = 0;
    absl::Time first_attempt = absl::InfinitePast();
    StopReason stop_reason = StopReason::kUnspecified;
  };

 private:
  struct ObjectState {
    std::shared_ptr<const kube::ResourceInfo> resource;
    cache::ObjectKey key;
    // The latest known state: the cache's immutable object, shared rather
    // than copied; null once deleted.
    std::shared_ptr<const cache::CachedObject> object;
    // Parsed from `text` while a cycle runs; null at rest, so that idle
    // objects cost their text only.
    nlohmann::json body;
    // A cycle of this object ran to its end (all handlers done, or none to
    // run) since the sidecar started: until then resume handlers join its
    // cycles (Kopf's `fully_handled_once`). Adding the finalizer, or waiting
    // for a retry, does not count.
    bool fully_handled_once = false;
    // What runs for the object now; one phase at a time.
    ObjectPhase phase = ObjectPhase::kIdle;
    // The object's state (or its handlers) changed since a cycle last looked
    // at it: Advance looks again once the object is idle and not gated.
    bool changed = false;
    // A vector, not a deque: a deque allocates its first block at
    // construction, for every object. Merging keeps this short.
    std::vector<RawEvent> raw_events;
    runtime::EventLoop::TimerId wake = 0;
    absl::Time wake_at = absl::InfiniteFuture();
    nlohmann::json memo = nlohmann::json::object();
    int throttle = 0;
    // The delete handlers are done; only the finalizer is left to remove.
    bool delete_done = false;
    // For objects whose diff-base is too large for an annotation: the last
    // handled essence (its digest is in the annotation).
    std::shared_ptr<const nlohmann::json> large_base;
    // The object's state changed since its index entries were computed
    // (until the indexing of its latest state has finished).
    bool index_dirty = false;
    // The resourceVersion last given to the index handlers: a state is
    // indexed once, however many events and write answers bring it.
    std::string indexed_rv;
    // Timers by handler id, and what they schedule by.
    std::map<std::string, TimerState> timers;
    // Daemons by handler id.
    std::map<std::string, DaemonState> daemons;
    // The delivery of the running cycle step, for inspection.
    DeliveryId current_delivery = 0;
    std::string current_handler;
    // For objects without cause handlers: a hash of the last essence seen,
    // so that idle timers know when it changed.
    size_t essence_hash = 0;
    absl::Time first_seen = absl::InfinitePast();
    absl::Time changed_at = absl::InfinitePast();
    // The running cycle; null at rest, so that idle objects do not carry
    // its members.
    std::unique_ptr<Cycle> cycle;
  };

  using Id = std::string;
  static const std::string& UidOf(const ObjectState& st);
  static const std::string& RvOf(const ObjectState& st);

  // The one place that starts a phase: when the object is idle, runs what
  // it needs next, in this order: its next raw event, the index handlers
  // for its latest state, a cycle if it changed (once the indices are
  // filled and no handler that could be its resource's is pending), then a
  // timer that came due. Each phase ends by advancing the object again.
  void Advance(const Id& id);
  // The object changed (or a wake came, or handlers were added): marks it
  // and advances it.
  void Reconsider(const Id& id);
  // Advances the objects that waited for the indices, once they are filled.
  void ReleaseGated();
  // The object is gone: its timers, daemons, index entries and state go.
  void Forget(absl::node_hash_map<Id, ObjectState>::iterator it);
  void HandleEvent(const kube::ResourceInfo& resource, const std::string& type,
                   const std::shared_ptr<const cache::CachedObject>& object,
                   bool gone);
  // Raw-event handlers: the object's next event, one delivery at a time.
  // The run's state lives in the object's cycle; each outcome posts the
  // next step, which finds it there by id and serial.
  void RunRawEvents(const Id& id, ObjectState& st,
                    const std::vector<const Handler*>& handlers);
  void StepRawEvents(const Id& id, uint64_t serial);
  // The object's cycle if it is still the one `serial` names, else null.
  Cycle* CycleOf(const Id& id, uint64_t serial);
  // Ends a raw-event or index run: the object is free again.
  void EndRun(ObjectState& st);
  bool StartCycle(const Id& id, ObjectState& st,
                  const std::vector<const Handler*>& handlers);
  void DeliverNext(const Id& id);
  // Takes an outcome's patches, memo patch and Events into the cycle.
  void TakeChanges(ObjectState& st, const Handler& h, const Outcome& outcome,
                   StreamId stream);
  // An outcome of the object's current cycle (the caller checked that
  // `st`, the object `id`'s state, still runs it).
  absl::Status OnTimerOutcome(const Id& id, ObjectState& st, const Handler* h,
                              const Outcome& outcome, StreamId stream);
  absl::Status OnOutcome(const Id& id, ObjectState& st, const Handler* h,
                         const Outcome& outcome, StreamId stream);
  void FinishCycle(const Id& id);
  void ApplyWrites(const Id& id, nlohmann::json patch,
                   nlohmann::json status_patch, bool remove_finalizer,
                   const std::vector<EventRecord>& events,
                   std::map<std::string, StreamId> patched_by);
  // The answer to ApplyWrites' PATCHes: takes the new state, then ends the
  // phase, removes the finalizer, retries without rejected patches, or
  // throttles.
  void OnWritten(const Id& id, bool remove_finalizer,
                 const std::map<std::string, StreamId>& patched_by,
                 const WriteAnswer& answer);
  // Handlers' patches the API server refused: their processes are told,
  // their records delayed, and the cycle writes its own part alone.
  void OnPatchRejected(const Id& id,
                       const std::map<std::string, StreamId>& patched_by,
                       const absl::Status& why);
  void EndCycle(const Id& id, absl::Time wake_at);
  // Tells each handler's process that its patch was not applied (`why`
  // follows "the patch of handler 'ID' "), with PATCH_REJECTED and a log
  // line.
  void RejectPatches(const ObjectState& st,
                     const std::map<std::string, StreamId>& patched_by,
                     const std::string& why);
  void Throttle(const Id& id, const absl::Status& why);
  void PatchFinalizer(const Id& id, bool add);
  void Schedule(const Id& id, ObjectState& st, absl::Time when);
  // Starts the timers of matching timer handlers, stops the others.
  void SyncTimers(const Id& id, ObjectState& st,
                  const std::vector<const Handler*>& handlers);
  void ScheduleTimer(const Id& id, ObjectState& st, const Handler& h,
                     absl::Time when);
  void FireTimer(const Id& id, const std::string& handler_id);
  void CancelTimers(ObjectState& st);
  // Daemons (processor_daemons.cc): start those of matching daemon handlers,
  // ask the others to stop.
  void SyncDaemons(const Id& id, ObjectState& st,
                   const std::vector<const Handler*>& handlers);
  void StartDaemon(const Id& id, const std::string& handler_id);
  void StopDaemon(const Id& id, const std::string& handler_id,
                  StopReason reason);
  void ForceStopDaemon(const Id& id, const std::string& handler_id);
  void ReleaseDaemon(const Id& id, const std::string& handler_id);
  absl::Status OnDaemonOutcome(const Id& id, const std::string& handler_id,
                               const Outcome& outcome, StreamId stream);
  // Applies a daemon's changes at once, outside any cycle.
  void ApplyDaemonChanges(const Id& id, const std::string& handler_id,
                          const Changes& changes, StreamId stream);
  // A daemon's delivery was released: posts StopAllDaemons' `released` once
  // none is left.
  void DaemonReleased();
  // True while a daemon of the object is not released: the finalizer stays.
  bool DaemonsHold(const ObjectState& st) const;
  // An object gone from the cluster: its daemons are cancelled at once.
  void DropDaemons(ObjectState& st);
  // Index handlers: compute the object's entries, one delivery at a time.
  void RunIndexers(const Id& id, ObjectState& st,
                   const std::vector<const Handler*>& handlers);
  void StepIndexers(const Id& id, uint64_t serial);
  // Takes the object from a write's response if it is newer than what we
  // have; false when the response was not a newer object.
  bool TakeBody(ObjectState& st, const std::string& response);
  // A delivery with a fresh id, the handler, resource and object filled in.
  Delivery NewDelivery(
      const ObjectState& st, const Handler& h,
      const std::shared_ptr<const cache::CachedObject>& object);
  // The delivery of one step of a raw-event or index run: the object's
  // body and memo as `object` has them, counted and marked current.
  Delivery StepDelivery(
      ObjectState& st, const Handler& h,
      const std::shared_ptr<const cache::CachedObject>& object, Cause cause);
  Delivery MakeDelivery(const ObjectState& st, const Handler& h,
                        const ProgressRecord& rec);

  runtime::EventLoop* loop_;
  Registry* registry_;
  Dispatcher* dispatcher_;
  ObjectWriter* writer_;
  const EngineOptions options_;
  const AnnotationKeys keys_;
  std::string finalizer_;
  // Hashed: ids share long prefixes (the resource), which makes ordered
  // comparisons slow.
  absl::node_hash_map<Id, ObjectState> objects_;
  std::map<std::string, HandlerStats> stats_;
  Indices indices_;
  // Objects whose cycles waited for the indices.
  std::set<Id> gated_;
  // Per resource, the index handlers its known objects were indexed with:
  // a handler not among them indexes them all when it registers.
  std::map<std::string, std::set<std::string>> index_handlers_;
  void SetIndexDirty(ObjectState& st, bool dirty);
  uint64_t next_cycle_serial_ = 1;
  // Resource full name -> the ResourceInfo its objects share.
  std::map<std::string, std::shared_ptr<const kube::ResourceInfo>> resources_;
  nlohmann::json operator_memo_;
  // The sidecar is shutting down: no daemon starts or restarts.
  bool stopping_daemons_ = false;
  // Daemon deliveries not yet released -> their object and handler.
  std::map<DeliveryId, std::pair<Id, std::string>> daemon_deliveries_;
  // StopAllDaemons' `released`, until it is posted.
  std::function<void()> daemons_released_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_PROCESSOR_H_
