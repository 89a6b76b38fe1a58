// The per-object state machine (see processor.h). Over 600 lines on
// purpose: every phase's start, steps and end are here together, so that
// each transition reads beside the state it changes; what a phase decides
// comes from pure functions elsewhere (causes, outcomes, writes, timers,
// indices), and daemons have processor_daemons.cc.
#include "server/engine/processor.h"

#include <algorithm>
#include <set>
#include <string>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "server/engine/causes.h"
#include "server/engine/outcomes.h"
#include "server/engine/timers.h"
#include "server/engine/write_run.h"
#include "server/engine/writes.h"
#include "server/runtime/logging.h"

namespace herald::engine {
namespace {

// The ids of the index handlers among `handlers`.
std::set<std::string> IndexHandlerIds(
    const std::vector<const Handler*>& handlers) {
  std::set<std::string> ids;
  for (const Handler* h : handlers) {
    if (h->cause() == Cause::kIndex) ids.insert(h->id());
  }
  return ids;
}

// Which kinds of index handlers are among `handlers`: those the handler
// processes run, and declarative ones the sidecar computes itself.
struct IndexKinds {
  bool run = false;
  bool declarative = false;
};
IndexKinds IndexKindsOf(const std::vector<const Handler*>& handlers) {
  IndexKinds kinds;
  for (const Handler* h : handlers) {
    if (h->cause() != Cause::kIndex) continue;
    (h->declarative() ? kinds.declarative : kinds.run) = true;
  }
  return kinds;
}

using nlohmann::json;

// Kopf's throttle after unexpected errors: 1, 1, 2, 3, 5, 8, ... up to 610 s.
constexpr int kThrottle[] = {1,  1,  2,  3,   5,   8,   13, 21,
                             34, 55, 89, 144, 233, 377, 610};

// The line about a handler's answer in a cycle, as Kopf logs one: a
// success at INFO, a retry at WARNING with its delay, a failure at ERROR.
void LogJudgement(const runtime::ObjectRef& ref, const Handler& h,
                  OutcomeStatus status, const ProgressRecord& rec,
                  absl::Time now) {
  switch (status) {
    case OutcomeStatus::kSuccess:
      HERALD_LOG(INFO, "engine").With(ref).WithHandler(h.id())
          << "handler " << h.id() << " succeeded";
      return;
    case OutcomeStatus::kTemporaryError: {
      HERALD_LOG(WARNING, "engine").With(ref).WithHandler(h.id())
          << "handler " << h.id()
          << " failed temporarily: " << rec.message.value_or("")
          << "; retrying in "
          << absl::FormatDuration(rec.delayed && *rec.delayed > now
                                      ? *rec.delayed - now
                                      : absl::ZeroDuration());
      return;
    }
    case OutcomeStatus::kPermanentError:
      HERALD_LOG(ERROR, "engine").With(ref).WithHandler(h.id())
          << "handler " << h.id()
          << " failed permanently: " << rec.message.value_or("");
      return;
    default:
      HERALD_LOG(DEBUG, "engine").With(ref).WithHandler(h.id())
          << "handler " << h.id() << " skipped";
      return;
  }
}

// Newer by resourceVersion, where both are numbers (as etcd's are);
// otherwise the later arrival wins.
bool IsNewer(const std::string& candidate, const std::string& current) {
  uint64_t a = 0, b = 0;
  if (absl::SimpleAtoi(candidate, &a) && absl::SimpleAtoi(current, &b)) {
    return a > b;
  }
  return true;
}

}  // namespace

void HandlerStats::Count(OutcomeStatus status) {
  switch (status) {
    case OutcomeStatus::kSuccess:
    case OutcomeStatus::kSkipped:
      successes++;
      break;
    case OutcomeStatus::kPermanentError:
      permanent_failures++;
      break;
    default:
      temporary_failures++;
      break;
  }
}

const std::string& Processor::UidOf(const ObjectState& st) {
  static const std::string* empty = new std::string();
  return st.object ? st.object->uid : *empty;
}

const std::string& Processor::RvOf(const ObjectState& st) {
  static const std::string* empty = new std::string();
  return st.object ? st.object->resource_version : *empty;
}

Processor::Processor(runtime::EventLoop* loop, Registry* registry,
                     Dispatcher* dispatcher, ObjectWriter* writer,
                     const EngineOptions& options)
    : loop_(loop),
      registry_(registry),
      dispatcher_(dispatcher),
      writer_(writer),
      options_(options),
      keys_(options.prefix, options.v1_keys),
      operator_memo_(options.operator_memo) {
  finalizer_ = options_.finalizer;
  if (finalizer_.empty()) {
    finalizer_ = options_.prefix == kKopfPrefix
                     ? "kopf.zalando.org/KopfFinalizerMarker"
                     : absl::StrCat(options_.prefix, "/finalizer");
  }
}

void Processor::OnEvent(const kube::ResourceInfo& resource,
                        const kube::WatchEvent& event) {
  std::string type = event.type == kube::WatchEvent::Type::kAdded ? "ADDED"
                     : event.type == kube::WatchEvent::Type::kModified
                         ? "MODIFIED"
                         : "DELETED";
  const bool gone = event.type == kube::WatchEvent::Type::kDeleted;
  loop_->Post([this, resource, type, object = event.object, gone]() {
    HandleEvent(resource, type, object, gone);
  });
}

void Processor::HandleEvent(
    const kube::ResourceInfo& resource, const std::string& type,
    const std::shared_ptr<const cache::CachedObject>& object, bool gone) {
  const Id id = ObjectId(resource.FullName(), object->key);
  bool has_event_handlers = false;
  for (const Handler* h : registry_->ForResource(resource.FullName())) {
    has_event_handlers |= h->cause() == Cause::kEvent;
  }
  auto it = objects_.find(id);
  if (gone) {
    if (it == objects_.end()) return;
    if (has_event_handlers) {
      // Raw-event handlers still hear about the deletion; the state goes
      // after that.
      it->second.raw_events.push_back({type, object});
      it->second.object.reset();
      Reconsider(id);
      return;
    }
    Forget(it);
    return;
  }
  auto [slot, fresh] = objects_.try_emplace(id);
  ObjectState& st = slot->second;
  if (fresh) st.memo = operator_memo_;  // A shallow copy, as in Kopf.
  if (!st.resource) {
    // One shared copy per resource, not one per object.
    auto& shared = resources_[resource.FullName()];
    if (!shared) shared = std::make_shared<const kube::ResourceInfo>(resource);
    st.resource = shared;
  }
  st.key = object->key;
  if (!st.object ||
      IsNewer(object->resource_version, st.object->resource_version)) {
    st.object = object;
  }
  if (has_event_handlers) {
    // While the object's previous events wait (its handler process is slow
    // or stalled), changes merge: the queued change takes the latest state,
    // so the queue stays bounded per object.
    if (type == "MODIFIED" && !st.raw_events.empty() &&
        st.raw_events.back().type != "DELETED") {
      st.raw_events.back().object = object;
    } else {
      st.raw_events.push_back({type, object});
    }
  }
  const std::string name = resource.FullName();
  const auto& handlers = registry_->ForResource(name);
  const auto [indexers, declarative] = IndexKindsOf(handlers);
  // As in Kopf, every new state is indexed (status-only changes too), but
  // once: the event of a state already taken from a write's answer, or an
  // older event arriving after it, brings nothing new to index.
  if (indexers && st.object->resource_version != st.indexed_rv) {
    SetIndexDirty(st, true);
  }
  if (indexers || declarative) {
    auto [known, first] = index_handlers_.try_emplace(name);
    if (first) known->second = IndexHandlerIds(handlers);
  }
  if (declarative) {
    indices_.IndexDeclaratively(
        id, json::parse(st.object->json, nullptr, false), handlers);
  }
  Reconsider(id);
}

void Processor::OnListed(const kube::ResourceInfo& resource,
                         const std::string& /*ns*/) {
  const std::string name = resource.FullName();
  loop_->Post([this, name] {
    indices_.MarkListed(name);
    ReleaseGated();
  });
}

bool Processor::IndicesReady() const {
  HERALD_ASSERT_ON_LOOP(loop_);
  return indices_.Ready(registry_->All());
}

json Processor::IndexJson(const std::string& index) const {
  HERALD_ASSERT_ON_LOOP(loop_);
  const Handler* h = registry_->Find(index);
  return indices_.Json(index, h != nullptr && h->declarative());
}

void Processor::SetIndexDirty(ObjectState& st, bool dirty) {
  if (st.index_dirty == dirty) return;
  st.index_dirty = dirty;
  indices_.AddUnindexed(st.resource->FullName(), dirty ? 1 : -1);
}

void Processor::RunIndexers(const Id& id, ObjectState& st,
                            const std::vector<const Handler*>& handlers) {
  st.indexed_rv = st.object->resource_version;
  json body = json::parse(st.object->json, nullptr, false);
  std::vector<const Handler*> remaining;
  for (const Handler* h : handlers) {
    if (h->cause() != Cause::kIndex || h->declarative()) continue;
    if (MatchesMeta(*h, body)) {
      remaining.push_back(h);
    } else {
      indices_.Erase(h->id(), id);  // It stopped matching.
    }
  }
  if (remaining.empty()) {
    SetIndexDirty(st, false);
    Advance(id);
    return;
  }
  auto c = std::make_unique<Cycle>();
  c->plan.cause = Cause::kIndex;
  c->due = std::move(remaining);
  c->index_rv = st.indexed_rv;
  c->serial = next_cycle_serial_++;
  const uint64_t serial = c->serial;
  st.cycle = std::move(c);
  st.phase = ObjectPhase::kIndexing;
  StepIndexers(id, serial);
}

Processor::Cycle* Processor::CycleOf(const Id& id, uint64_t serial) {
  auto it = objects_.find(id);
  if (it == objects_.end() || !it->second.cycle ||
      it->second.cycle->serial != serial) {
    return nullptr;
  }
  return it->second.cycle.get();
}

void Processor::EndRun(ObjectState& st) {
  st.phase = ObjectPhase::kIdle;
  st.cycle.reset();
  st.current_delivery = 0;
  st.current_handler.clear();
}

void Processor::StepIndexers(const Id& id, uint64_t serial) {
  if (CycleOf(id, serial) == nullptr) return;
  ObjectState& s = objects_.find(id)->second;
  Cycle& c = *s.cycle;
  if (c.next >= c.due.size() || !s.object) {
    const bool latest = !s.object || s.object->resource_version == c.index_rv;
    EndRun(s);
    // Clean only if no newer state arrived while indexing.
    if (latest) SetIndexDirty(s, false);
    Advance(id);
    ReleaseGated();
    return;
  }
  const Handler* h = c.due[c.next++];
  Delivery d = StepDelivery(s, *h, s.object, Cause::kIndex);
  dispatcher_->Submit(
      std::move(d),
      [this, id, h, serial](const Outcome& outcome, StreamId) -> absl::Status {
        const absl::Status& bad = outcome.malformed;
        // A run the object no longer has (it went) keeps no entries.
        const bool current = CycleOf(id, serial) != nullptr;
        if (outcome.status == OutcomeStatus::kSuccess) {
          if (bad.ok()) {
            stats_[h->id()].successes++;
            if (current)
              indices_.Set(h->id(), id, IndexEntries(outcome.result));
          }
        } else {
          // The object's previous entries stay until it indexes again.
          stats_[h->id()].temporary_failures++;
        }
        loop_->Post([this, id, serial] { StepIndexers(id, serial); });
        return bad;
      });
}

const json* Processor::MemoOf(const std::string& resource_full_name,
                              const cache::ObjectKey& key) const {
  HERALD_ASSERT_ON_LOOP(loop_);
  auto it = objects_.find(ObjectId(resource_full_name, key));
  return it == objects_.end() ? nullptr : &it->second.memo;
}

void Processor::Reprocess(const std::string& resource_full_name) {
  HERALD_ASSERT_ON_LOOP(loop_);
  const auto& handlers = registry_->ForResource(resource_full_name);
  std::set<std::string> ids = IndexHandlerIds(handlers);
  std::set<std::string>& known = index_handlers_[resource_full_name];
  const bool new_indexers =
      !std::includes(known.begin(), known.end(), ids.begin(), ids.end());
  const auto [indexers, declarative] = IndexKindsOf(handlers);
  known = std::move(ids);
  for (auto& [id, st] : objects_) {
    if (st.resource->FullName() != resource_full_name) continue;
    if (new_indexers && st.object) {
      // Indexed again, by every index handler: a state is indexed as a
      // whole, and the others give the same entries for it.
      if (indexers) {
        st.indexed_rv.clear();
        SetIndexDirty(st, true);
      }
      if (declarative) {
        indices_.IndexDeclaratively(
            id, json::parse(st.object->json, nullptr, false), handlers);
      }
    }
    Reconsider(id);
  }
}

void Processor::Adopt(
    const kube::ResourceInfo& resource,
    const std::vector<std::shared_ptr<const cache::CachedObject>>& objects,
    bool listed) {
  HERALD_ASSERT_ON_LOOP(loop_);
  for (const auto& object : objects) {
    HandleEvent(resource, "ADDED", object, false);
  }
  if (listed) {
    indices_.MarkListed(resource.FullName());
    ReleaseGated();
  }
}

void Processor::Schedule(const Id& id, ObjectState& st, absl::Time when) {
  if (st.wake && st.wake_at <= when) return;
  if (st.wake) loop_->Cancel(st.wake);
  st.wake_at = when;
  st.wake = loop_->PostAt(when, [this, id] {
    auto it = objects_.find(id);
    if (it == objects_.end()) return;
    it->second.wake = 0;
    it->second.wake_at = absl::InfiniteFuture();
    Reconsider(id);
  });
}

void Processor::Reconsider(const Id& id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  it->second.changed = true;
  Advance(id);
}

void Processor::ReleaseGated() {
  if (gated_.empty() || !IndicesReady()) return;
  std::set<Id> gated;
  gated.swap(gated_);
  for (const auto& id : gated) Advance(id);
}

void Processor::Advance(const Id& id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  ObjectState& st = it->second;
  // A running phase advances the object again when it ends.
  if (st.phase != ObjectPhase::kIdle) return;
  const auto& handlers = registry_->ForResource(st.resource->FullName());
  if (handlers.empty()) {
    st.changed = false;
    st.raw_events = {};  // Frees its storage too.
    return;
  }
  // Raw events first, in order; then the indices of the latest state.
  if (!st.raw_events.empty()) {
    RunRawEvents(id, st, handlers);
    return;
  }
  if (!st.object) {
    // Only a DELETED event remained: the object is gone.
    Forget(it);
    return;
  }
  if (st.index_dirty) {
    RunIndexers(id, st, handlers);
    return;
  }
  if (st.changed) {
    // Only raw-event and index handlers: nothing else to look at, and no
    // reason to parse the body.
    bool stateful = false;
    for (const Handler* h : handlers) {
      stateful |= h->cause() != Cause::kEvent && h->cause() != Cause::kIndex;
    }
    if (!stateful && st.timers.empty() && st.daemons.empty()) {
      st.changed = false;
      return;
    }
    if (!IndicesReady() || registry_->HasPendingFor(*st.resource)) {
      // Kopf's rule: handlers wait until every index is filled. Likewise
      // while a handler that could be for this resource is pending: a cycle
      // without it could store its cause as handled. The change waits.
      gated_.insert(id);
      return;
    }
    st.changed = false;
    st.body = json::parse(st.object->json, nullptr, false);
    if (!st.body.is_object()) {
      st.body = nullptr;
      return;
    }
    SyncTimers(id, st, handlers);
    SyncDaemons(id, st, handlers);
    if (StartCycle(id, st, handlers)) return;
    st.body = nullptr;
  }
  // A timer that came due while the object was busy runs now.
  for (auto& [hid, t] : st.timers) {
    if (t.pending) {
      FireTimer(id, hid);
      return;
    }
  }
}

void Processor::Forget(absl::node_hash_map<Id, ObjectState>::iterator it) {
  ObjectState& st = it->second;
  if (st.wake) loop_->Cancel(st.wake);
  CancelTimers(st);
  DropDaemons(st);
  indices_.Drop(it->first);
  SetIndexDirty(st, false);
  objects_.erase(it);
}

void Processor::RunRawEvents(const Id& id, ObjectState& st,
                             const std::vector<const Handler*>& handlers) {
  RawEvent ev = std::move(st.raw_events.front());
  st.raw_events.erase(st.raw_events.begin());
  if (st.raw_events.empty()) st.raw_events = {};
  // The body is parsed only when a filter needs it: raw events are the
  // busiest path, and the cached object carries uid and resourceVersion.
  bool filtered = false;
  for (const Handler* h : handlers) {
    filtered |= h->cause() == Cause::kEvent &&
                (!h->spec.labels.empty() || !h->spec.annotations.empty());
  }
  json parsed =
      filtered ? json::parse(ev.object->json, nullptr, false) : json(nullptr);
  std::vector<const Handler*> matching;
  for (const Handler* h : handlers) {
    if (h->cause() == Cause::kEvent && (!filtered || MatchesMeta(*h, parsed))) {
      matching.push_back(h);
    }
  }
  if (matching.empty()) {
    Advance(id);
    return;
  }
  // One delivery at a time, in order; errors are not retried.
  auto c = std::make_unique<Cycle>();
  c->plan.cause = Cause::kEvent;
  c->due = std::move(matching);
  c->event_type = std::move(ev.type);
  c->event_object = std::move(ev.object);
  c->serial = next_cycle_serial_++;
  const uint64_t serial = c->serial;
  st.cycle = std::move(c);
  st.phase = ObjectPhase::kRawEvent;
  StepRawEvents(id, serial);
}

void Processor::StepRawEvents(const Id& id, uint64_t serial) {
  if (CycleOf(id, serial) == nullptr) return;
  ObjectState& s = objects_.find(id)->second;
  Cycle& c = *s.cycle;
  if (c.next >= c.due.size()) {
    if (c.patch.empty() && c.status_patch.empty() && c.events.empty()) {
      EndRun(s);
      Advance(id);
      return;
    }
    // The handlers' changes, written as a cycle's are, once for the event;
    // the object's next event or cycle comes after.
    s.changed = true;
    ApplyWrites(id, std::move(c.patch), std::move(c.status_patch), false,
                c.events, std::move(c.patched_by));
    return;
  }
  const Handler* h = c.due[c.next++];
  Delivery d = StepDelivery(s, *h, c.event_object, Cause::kEvent);
  d.event_type = c.event_type;
  dispatcher_->Submit(
      std::move(d),
      [this, id, h, serial](const Outcome& outcome,
                            StreamId stream) -> absl::Status {
        // Errors are not retried; whatever the status, the changes count.
        if (outcome.status == OutcomeStatus::kSuccess) {
          stats_[h->id()].successes++;
        }
        loop_->Post([this, id, serial] { StepRawEvents(id, serial); });
        if (!outcome.malformed.ok()) {
          const ObjectState& st = objects_.find(id)->second;
          HERALD_LOG(WARNING, "engine")
                  .With(LogRef(*st.resource, st.key))
                  .WithHandler(h->id())
              << "delivery " << DeliveryName(outcome.delivery_id) << " of "
              << h->id() << ": malformed outcome, none of its changes applied: "
              << outcome.malformed.message();
          return outcome.malformed;
        }
        if (CycleOf(id, serial) != nullptr) {
          TakeChanges(objects_.find(id)->second, *h, outcome, stream);
        }
        return absl::OkStatus();
      });
}

bool Processor::StartCycle(const Id& id, ObjectState& st,
                           const std::vector<const Handler*>& handlers) {
  const absl::Time now = loop_->clock()->Now();
  ObjectFacts facts;
  facts.first_sight = !st.fully_handled_once;
  facts.delete_done = st.delete_done;
  facts.daemons_hold = DaemonsHold(st);
  facts.large_base = st.large_base.get();
  CausePlan plan = DetectCause(st.body, handlers, facts, keys_, finalizer_);
  switch (plan.action) {
    case CausePlan::Action::kNone:
      st.fully_handled_once = true;
      return false;
    case CausePlan::Action::kAddFinalizer:
    case CausePlan::Action::kRemoveFinalizer:
      PatchFinalizer(id, plan.action == CausePlan::Action::kAddFinalizer);
      return true;
    case CausePlan::Action::kTrackEssence: {
      st.fully_handled_once = true;
      // Idle timers need to know when the essence last changed.
      const size_t hash = std::hash<std::string>{}(plan.new_essence.dump());
      if (hash != st.essence_hash) {
        st.essence_hash = hash;
        st.changed_at = now;
      }
      return false;
    }
    case CausePlan::Action::kCycle:
      break;
  }
  if (plan.essence_touched) st.changed_at = now;
  ProgressPlan progress =
      PlanProgress(st.body, plan.handlers, plan.purpose, keys_, now);
  if (progress.due.empty() && progress.wake != absl::InfiniteFuture()) {
    Schedule(id, st, progress.wake);
    return false;
  }
  auto c = std::make_unique<Cycle>();
  c->plan = std::move(plan);
  c->records = std::move(progress.records);
  c->child_records = std::move(progress.child_records);
  c->due = std::move(progress.due);
  c->serial = next_cycle_serial_++;
  st.cycle = std::move(c);
  st.phase = ObjectPhase::kCycle;
  if (st.cycle->due.empty()) {
    FinishCycle(id);  // All done already (or no handlers): store the result.
  } else {
    DeliverNext(id);
  }
  return true;
}

void Processor::CancelTimers(ObjectState& st) {
  for (auto& [hid, t] : st.timers) {
    if (t.id) loop_->Cancel(t.id);
  }
  st.timers.clear();
}

void Processor::ScheduleTimer(const Id& id, ObjectState& st, const Handler& h,
                              absl::Time when) {
  TimerState& t = st.timers[h.id()];
  if (t.id) loop_->Cancel(t.id);
  t.at = when;
  const std::string& hid = h.id();
  t.id = loop_->PostAt(when, [this, id, hid] {
    auto it = objects_.find(id);
    if (it == objects_.end()) return;
    auto t = it->second.timers.find(hid);
    if (t == it->second.timers.end()) return;
    t->second.id = 0;
    // Due: runs as soon as the object is free.
    t->second.pending = true;
    Advance(id);
  });
}

void Processor::SyncTimers(const Id& id, ObjectState& st,
                           const std::vector<const Handler*>& handlers) {
  const absl::Time now = loop_->clock()->Now();
  if (st.first_seen == absl::InfinitePast()) st.first_seen = now;
  if (st.changed_at == absl::InfinitePast()) st.changed_at = now;
  for (const Handler* h : handlers) {
    if (h->cause() != Cause::kTimer) continue;
    const bool match = TimerApplies(*h, st.body);
    auto t = st.timers.find(h->id());
    if (match && t == st.timers.end()) {
      ScheduleTimer(id, st, *h, FirstTimerRun(*h, now));
    } else if (!match && t != st.timers.end()) {
      if (t->second.id) loop_->Cancel(t->second.id);
      st.timers.erase(t);
    }
  }
}

void Processor::FireTimer(const Id& id, const std::string& handler_id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  ObjectState& st = it->second;
  auto t = st.timers.find(handler_id);
  const Handler* h = registry_->Find(handler_id);
  if (t == st.timers.end()) return;
  t->second.pending = false;
  if (h == nullptr || !st.object) return;
  const absl::Time now = loop_->clock()->Now();
  const TimerOptions& opts = h->spec.timer;
  if (auto until = IdleUntil(*h, st.changed_at, now)) {
    ScheduleTimer(id, st, *h, *until);
    return;
  }
  const absl::Duration interval = opts.interval;
  TimerState& ts = t->second;
  if (ts.first_attempt == absl::InfinitePast()) ts.first_attempt = now;
  ProgressRecord limits;
  limits.started = ts.first_attempt;
  limits.retries = ts.retries;
  if (StopAtLimits(*h, now, limits)) {
    // Failed for good without a run; the next comes at the interval.
    stats_[handler_id].permanent_failures++;
    HERALD_LOG(ERROR, "engine")
            .With(LogRef(*st.resource, st.key))
            .WithHandler(handler_id)
        << "timer " << handler_id << ": " << limits.message.value_or("")
        << "; next run in " << absl::FormatDuration(interval);
    ts.retries = 0;
    ts.first_attempt = absl::InfinitePast();
    ScheduleTimer(
        id, st, *h,
        now + NextTimerRunIn(interval, opts.sharp, st.first_seen, now));
    return;
  }
  Cycle c;
  c.plan.cause = Cause::kTimer;
  c.timer_id = handler_id;
  c.timer_next = interval;
  c.timer_grid = opts.sharp;
  c.serial = next_cycle_serial_++;
  const uint64_t serial = c.serial;
  st.cycle = std::make_unique<Cycle>(std::move(c));
  st.phase = ObjectPhase::kTimer;
  Delivery d = NewDelivery(st, *h, st.object);
  d.cause = Cause::kTimer;
  d.retry = ts.retries;
  d.started = ts.first_attempt;
  d.memo_json = st.memo.dump();
  st.current_delivery = d.id;
  st.current_handler = handler_id;
  stats_[handler_id].deliveries++;
  dispatcher_->Submit(std::move(d), [this, id, h, serial](
                                        const Outcome& outcome,
                                        StreamId stream) {
    if (CycleOf(id, serial) == nullptr) return absl::OkStatus();
    return OnTimerOutcome(id, objects_.find(id)->second, h, outcome, stream);
  });
}

void Processor::TakeChanges(ObjectState& st, const Handler& h,
                            const Outcome& outcome, StreamId stream) {
  Cycle& c = *st.cycle;
  const Changes& changes = outcome.changes;
  if (!changes.patch.empty()) {
    c.patch.merge_patch(changes.patch);
    c.patched_by[h.id()] = stream;
  }
  if (!changes.status_patch.empty()) {
    c.status_patch.merge_patch(changes.status_patch);
    c.patched_by[h.id()] = stream;
  }
  if (!changes.memo_patch.empty()) st.memo.merge_patch(changes.memo_patch);
  c.events.insert(c.events.end(), changes.events.begin(), changes.events.end());
}

absl::Status Processor::OnTimerOutcome(const Id& id, ObjectState& st,
                                       const Handler* h, const Outcome& outcome,
                                       StreamId stream) {
  Cycle& c = *st.cycle;
  HandlerStats& stats = stats_[h->id()];
  const absl::Status& bad = outcome.malformed;
  const TimerJudgement j = JudgeTimerRun(*h, outcome);
  const runtime::ObjectRef ref = LogRef(*st.resource, st.key);
  auto t = st.timers.find(h->id());
  if (t != st.timers.end()) {
    if (j.status == OutcomeStatus::kTemporaryError) {
      t->second.retries++;
    } else {
      t->second.retries = 0;
      t->second.first_attempt = absl::InfinitePast();
    }
  }
  switch (j.status) {
    case OutcomeStatus::kSuccess:
      stats.successes++;
      if (!outcome.result.is_null()) {
        c.status_patch.merge_patch(json{{h->id(), outcome.result}});
      }
      HERALD_LOG(DEBUG, "engine").With(ref).WithHandler(h->id())
          << "timer " << h->id() << " succeeded";
      break;
    case OutcomeStatus::kTemporaryError:
      stats.temporary_failures++;
      c.timer_next = *j.next;
      c.timer_grid = false;
      HERALD_LOG(WARNING, "engine").With(ref).WithHandler(h->id())
          << "timer " << h->id() << " failed temporarily: " << outcome.message
          << "; runs again in " << absl::FormatDuration(*j.next);
      break;
    case OutcomeStatus::kPermanentError:
      stats.permanent_failures++;
      HERALD_LOG(ERROR, "engine").With(ref).WithHandler(h->id())
          << "timer " << h->id() << " failed permanently: " << outcome.message;
      break;
    default:
      break;
  }
  if (bad.ok()) TakeChanges(st, *h, outcome, stream);
  loop_->Post([this, id, serial = c.serial] {
    Cycle* cycle = CycleOf(id, serial);
    if (cycle == nullptr) return;
    Cycle& cyc = *cycle;
    ApplyWrites(id, std::move(cyc.patch), std::move(cyc.status_patch), false,
                cyc.events, std::move(cyc.patched_by));
  });
  return bad;
}

Delivery Processor::StepDelivery(
    ObjectState& st, const Handler& h,
    const std::shared_ptr<const cache::CachedObject>& object, Cause cause) {
  Delivery d = NewDelivery(st, h, object);
  d.cause = cause;
  d.memo_json = st.memo.dump();
  st.current_delivery = d.id;
  st.current_handler = h.id();
  stats_[h.id()].deliveries++;
  return d;
}

Delivery Processor::NewDelivery(
    const ObjectState& st, const Handler& h,
    const std::shared_ptr<const cache::CachedObject>& object) {
  Delivery d;
  d.id = dispatcher_->NewDeliveryId();
  d.handler_id = h.id();
  d.resource = st.resource;
  d.ns = st.key.ns;
  d.name = st.key.name;
  d.uid = object->uid;
  d.resource_version = object->resource_version;
  d.object = object;
  for (const auto& name : h.spec.indices) {
    const Handler* index = registry_->Find(name);
    d.indices_json[name] =
        indices_.Text(name, index != nullptr && index->declarative());
  }
  return d;
}

Delivery Processor::MakeDelivery(const ObjectState& st, const Handler& h,
                                 const ProgressRecord& rec) {
  const Cycle& c = *st.cycle;
  Delivery d = NewDelivery(st, h, st.object);
  d.cause = h.cause() == Cause::kField ? Cause::kField : c.plan.cause;
  if (!h.field.empty()) {
    // Any handler limited to a field: the field's values and the diff
    // inside it.
    d.old_json = Resolve(c.plan.old_essence, h.field).dump();
    d.new_json = Resolve(c.plan.new_essence, h.field).dump();
    d.diff_json = DiffToJson(ReduceDiff(c.plan.diff, h.field)).dump();
  } else if (c.plan.cause == Cause::kUpdate) {
    d.old_json = c.plan.old_essence.dump();
    d.new_json = c.plan.new_essence.dump();
    d.diff_json = DiffToJson(c.plan.diff).dump();
  }
  d.retry = rec.retries;
  d.started = rec.started;
  for (const auto& child : rec.subrefs) {
    auto cr = c.child_records.find(child);
    if (cr != c.child_records.end() && cr->second.finished()) {
      d.done_subhandler_ids.push_back(child);
    }
  }
  d.memo_json = st.memo.dump();
  return d;
}

void Processor::DeliverNext(const Id& id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  ObjectState& st = it->second;
  if (!st.object) {
    // Deleted meanwhile: no handler is called for a gone object.
    FinishCycle(id);
    return;
  }
  Cycle& c = *st.cycle;
  const absl::Time now = loop_->clock()->Now();
  while (c.next < c.due.size()) {
    const Handler* h = c.due[c.next];
    ProgressRecord& rec = c.records[h->id()];
    // Limits are checked before an attempt that would exceed them.
    if (StopAtLimits(*h, now, rec)) {
      stats_[h->id()].permanent_failures++;
      HERALD_LOG(ERROR, "engine")
              .With(LogRef(*st.resource, st.key))
              .WithHandler(h->id())
          << "handler " << h->id()
          << " failed permanently: " << rec.message.value_or("");
      ++c.next;
      continue;
    }
    Delivery d = MakeDelivery(st, *h, rec);
    st.current_delivery = d.id;
    st.current_handler = h->id();
    stats_[h->id()].deliveries++;
    dispatcher_->Submit(
        std::move(d), [this, id, h, serial = c.serial](const Outcome& outcome,
                                                       StreamId stream) {
          // An outcome for a cycle the object no longer runs changes nothing.
          if (CycleOf(id, serial) == nullptr) return absl::OkStatus();
          return OnOutcome(id, objects_.find(id)->second, h, outcome, stream);
        });
    return;
  }
  FinishCycle(id);
}

absl::Status Processor::OnOutcome(const Id& id, ObjectState& st,
                                  const Handler* h, const Outcome& outcome,
                                  StreamId stream) {
  Cycle& c = *st.cycle;
  ProgressRecord& rec = c.records[h->id()];
  const absl::Time now = loop_->clock()->Now();
  HandlerStats& stats = stats_[h->id()];

  // The session validated the outcome before anything is taken.
  const absl::Status& bad = outcome.malformed;
  const runtime::ObjectRef ref = LogRef(*st.resource, st.key);
  if (!bad.ok()) {
    HERALD_LOG(WARNING, "engine").With(ref).WithHandler(h->id())
        << "delivery " << DeliveryName(outcome.delivery_id) << " of " << h->id()
        << ": malformed outcome: " << bad.message();
  }
  const Judgement j =
      RecordAnswer(*h, outcome, c.plan.purpose, now, rec, c.child_records);
  for (const auto& w : j.warnings) {
    HERALD_LOG(WARNING, "engine").With(ref).WithHandler(h->id())
        << "handler " << h->id() << ": " << w;
  }
  LogJudgement(ref, *h, j.status, rec, now);
  stats.Count(j.status);
  if (bad.ok()) {
    TakeChanges(st, *h, outcome, stream);
    if (j.status == OutcomeStatus::kSuccess && !j.drop_result &&
        !outcome.result.is_null()) {
      c.status_patch.merge_patch(json{{h->id(), outcome.result}});
    }
  }
  ++c.next;
  loop_->Post([this, id, serial = c.serial] {
    if (CycleOf(id, serial) != nullptr) DeliverNext(id);
  });
  return bad;
}

void Processor::FinishCycle(const Id& id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  ObjectState& st = it->second;
  Cycle& c = *st.cycle;
  if (!st.object) {
    // Deleted meanwhile: nothing is stored for it (ApplyWrites tells the
    // handlers whose patches go nowhere).
    HERALD_LOG(INFO, "engine").With(LogRef(*st.resource, st.key))
        << "deleted during its " << c.plan.purpose
        << " cycle; the cycle ends without writing";
    ApplyWrites(id, json::object(), json::object(), false, c.events,
                std::move(c.patched_by));
    return;
  }
  CycleResult result;
  result.cause = c.plan.cause;
  result.records = &c.records;
  result.child_records = &c.child_records;
  result.new_essence = &c.plan.new_essence;
  WritePlan plan =
      PlanCycleWrites(st.body, keys_, result, std::move(c.patch),
                      std::move(c.status_patch), options_.max_diffbase_bytes);
  if (plan.all_done) st.fully_handled_once = true;
  switch (plan.large_base) {
    case WritePlan::LargeBase::kSet:
      HERALD_LOG(WARNING, "engine").With(LogRef(*st.resource, st.key))
          << "the diff-base (" << plan.digested_bytes << " bytes) is over "
          << options_.max_diffbase_bytes << " bytes; storing its digest in "
          << options_.prefix << "/" << kDigestKey
          << " and the essence in memory";
      st.large_base = std::make_shared<const json>(c.plan.new_essence);
      break;
    case WritePlan::LargeBase::kClear:
      st.large_base.reset();
      break;
    case WritePlan::LargeBase::kKeep:
      break;
  }
  ApplyWrites(id, std::move(plan.patch), std::move(plan.status_patch),
              plan.remove_finalizer, c.events, std::move(c.patched_by));
}

bool Processor::TakeBody(ObjectState& st, const std::string& response) {
  // A write answered after the object's deletion was seen does not bring
  // it back.
  if (!st.object) return false;
  auto object = kube::IngestObject(response, /*strip_managed_fields=*/true);
  if (!object.ok()) return false;
  if (!IsNewer(object->resource_version, st.object->resource_version)) {
    return false;
  }
  st.object = std::make_shared<const cache::CachedObject>(std::move(*object));
  if (st.body.is_object())
    st.body = json::parse(st.object->json, nullptr, false);
  return true;
}

void Processor::ApplyWrites(const Id& id, json patch, json status_patch,
                            bool remove_finalizer,
                            const std::vector<EventRecord>& events,
                            std::map<std::string, StreamId> patched_by) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  ObjectState& st = it->second;
  st.phase = ObjectPhase::kWriting;
  // Events go out whatever happens to the patch (about the object a raw
  // event carried, when the object is gone since).
  std::string uid = UidOf(st), rv = RvOf(st);
  if (!st.object && st.cycle && st.cycle->event_object) {
    uid = st.cycle->event_object->uid;
    rv = st.cycle->event_object->resource_version;
  } else if (!st.object) {
    // A cycle's body is its object's last state.
    const json& u = Resolve(MetaOf(st.body), {"uid"});
    const json& r = Resolve(MetaOf(st.body), {"resourceVersion"});
    if (u.is_string()) uid = u.get<std::string>();
    if (r.is_string()) rv = r.get<std::string>();
  }
  for (const auto& e : events) {
    writer_->PostEvent(
        kube::InvolvedObject{st.resource->ApiVersion(), st.resource->kind,
                             st.key.ns, st.key.name, uid, rv},
        e.type == EventType::kWarning ? kube::EventKind::kWarning
                                      : kube::EventKind::kNormal,
        e.reason, e.message);
  }
  if (!st.object) {
    // Gone from the cluster: nothing to patch or store.
    RejectPatches(st, patched_by, "was not applied: the object is gone");
    EndCycle(id, absl::InfiniteFuture());
    return;
  }
  FoldStatus(st.resource->has_status, patch, status_patch);
  RunPatches(writer_, st.resource, st.key, patch, status_patch,
             [this, id, remove_finalizer,
              patched_by = std::move(patched_by)](const WriteAnswer& answer) {
               OnWritten(id, remove_finalizer, patched_by, answer);
             });
}

void Processor::OnWritten(const Id& id, bool remove_finalizer,
                          const std::map<std::string, StreamId>& patched_by,
                          const WriteAnswer& answer) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  ObjectState& st = it->second;
  for (const auto& body : answer.bodies) TakeBody(st, body);
  const bool raw_event = st.cycle && st.cycle->plan.cause == Cause::kEvent;
  switch (answer.kind) {
    case WriteAnswer::Kind::kApplied:
      st.throttle = 0;
      if (remove_finalizer) {
        st.delete_done = true;
        if (DaemonsHold(st)) {
          // The daemons' release brings the object back for the finalizer.
          EndCycle(id, absl::InfiniteFuture());
          return;
        }
        PatchFinalizer(id, /*add=*/false);
        return;
      }
      // Wake for the earliest delayed handler.
      EndCycle(id, st.cycle ? EarliestDelay(st.cycle->records)
                            : absl::InfiniteFuture());
      return;
    case WriteAnswer::Kind::kGone:
      RejectPatches(st, patched_by, "was not applied: the object is gone");
      EndCycle(id, absl::InfiniteFuture());
      return;
    case WriteAnswer::Kind::kRejected:
      if (!patched_by.empty()) {
        OnPatchRejected(id, patched_by, answer.status);
        return;
      }
      break;
    case WriteAnswer::Kind::kFailed:
      break;
  }
  if (raw_event) {
    // Cycles run their handlers again after the throttle; raw-event
    // handlers are not retried, so their changes are lost.
    RejectPatches(st, patched_by,
                  absl::StrCat("was not applied: ", answer.status.ToString()));
  }
  Throttle(id, answer.status);
}

void Processor::OnPatchRejected(
    const Id& id, const std::map<std::string, StreamId>& patched_by,
    const absl::Status& why) {
  ObjectState& s = objects_.find(id)->second;
  // A handler's patch does not apply: tell its process, record the failure
  // in progress, and write our own part alone.
  RejectPatches(s, patched_by, absl::StrCat("was rejected: ", why.message()));
  if (!s.cycle || s.cycle->plan.cause == Cause::kEvent) {
    // Raw-event handlers keep no progress and are not retried.
    EndCycle(id, absl::InfiniteFuture());
    return;
  }
  const absl::Time now = loop_->clock()->Now();
  for (const auto& [hid, stream] : patched_by) {
    const Handler* h = registry_->Find(hid);
    RecordRejectedPatch(h ? h->backoff() : absl::Seconds(60), now,
                        std::string(why.message()), s.cycle->records[hid]);
    stats_[hid].temporary_failures++;
  }
  s.cycle->patch = json::object();
  s.cycle->status_patch = json::object();
  s.cycle->patched_by.clear();
  s.cycle->events.clear();
  if (!s.cycle->timer_id.empty()) {
    // A timer run keeps no progress: it simply runs again later.
    s.cycle->timer_next = absl::Seconds(60);
    if (const Handler* h = registry_->Find(s.cycle->timer_id)) {
      s.cycle->timer_next = h->backoff();
    }
    EndCycle(id, absl::InfiniteFuture());
    return;
  }
  FinishCycle(id);
}

void Processor::RejectPatches(const ObjectState& st,
                              const std::map<std::string, StreamId>& patched_by,
                              const std::string& why) {
  for (const auto& [hid, stream] : patched_by) {
    // Logged with the stream where every protocol error is sent.
    const std::string message = absl::StrCat(
        "the patch of handler '", hid, "' for ", st.resource->FullName(), " ",
        st.key.ns.empty() ? "" : st.key.ns + "/", st.key.name, " ", why);
    if (StreamSink* sink = dispatcher_->Sink(stream)) {
      sink->Error(StreamError::kPatchRejected, 0, message);
    }
  }
}

void Processor::EndCycle(const Id& id, absl::Time wake_at) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  ObjectState& st = it->second;
  const std::string timer_id = st.cycle ? st.cycle->timer_id : "";
  const absl::Duration timer_next =
      st.cycle ? NextTimerRunIn(st.cycle->timer_next, st.cycle->timer_grid,
                                st.first_seen, loop_->clock()->Now())
               : absl::ZeroDuration();
  st.phase = ObjectPhase::kIdle;
  st.cycle.reset();
  st.body = nullptr;
  st.current_delivery = 0;
  st.current_handler.clear();
  if (wake_at != absl::InfiniteFuture()) Schedule(id, st, wake_at);
  if (!timer_id.empty() && st.timers.count(timer_id)) {
    if (const Handler* h = registry_->Find(timer_id)) {
      ScheduleTimer(id, st, *h, loop_->clock()->Now() + timer_next);
    }
  }
  Advance(id);
}

void Processor::Throttle(const Id& id, const absl::Status& why) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  ObjectState& st = it->second;
  const int n = static_cast<int>(sizeof(kThrottle) / sizeof(kThrottle[0]));
  absl::Duration delay = absl::Seconds(kThrottle[std::min(st.throttle, n - 1)]);
  st.throttle++;
  HERALD_LOG(WARNING, "engine").With(LogRef(*st.resource, st.key))
      << why << "; trying again in " << absl::FormatDuration(delay);
  EndCycle(id, loop_->clock()->Now() + delay);
}

void Processor::PatchFinalizer(const Id& id, bool add) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  ObjectState& st = it->second;
  st.phase = ObjectPhase::kFinalizer;
  const absl::optional<json> ops =
      FinalizerPatch(st.body, finalizer_, add, RvOf(st));
  if (!ops) {
    EndCycle(id, absl::InfiniteFuture());
    return;
  }
  writer_->Patch(*st.resource, st.key, kube::PatchType::kJson, ops->dump(),
                 false, [this, id](absl::StatusOr<std::string> r) {
                   auto it2 = objects_.find(id);
                   if (it2 == objects_.end()) return;
                   if (r.ok()) {
                     // Go on from the new state, if the answer is one (an
                     // object whose last finalizer went is gone instead).
                     if (TakeBody(it2->second, *r)) it2->second.changed = true;
                     EndCycle(id, absl::InfiniteFuture());
                     return;
                   }
                   const int http = kube::HttpStatusOf(r.status());
                   if (http == 404 || http == 409 || http == 422) {
                     // Gone, or changed meanwhile: its watch event brings
                     // the new state and another cycle.
                     EndCycle(id, absl::InfiniteFuture());
                   } else {
                     Throttle(id, r.status());
                   }
                 });
}

namespace {
// Views in a stable order (objects are hashed, not ordered).
template <class View>
void SortViews(std::vector<View>& views) {
  std::sort(views.begin(), views.end(), [](const View& a, const View& b) {
    return std::tie(a.key.ns, a.key.name) < std::tie(b.key.ns, b.key.name);
  });
}
}  // namespace

std::vector<Processor::QueueView> Processor::Queues() const {
  HERALD_ASSERT_ON_LOOP(loop_);
  std::vector<QueueView> out;
  for (const auto& [id, st] : objects_) {
    const bool gated = gated_.count(id) > 0;
    const bool busy = st.phase != ObjectPhase::kIdle;
    if (!busy && st.raw_events.empty() && !st.wake && !st.index_dirty &&
        !gated) {
      continue;
    }
    QueueView v;
    v.resource = *st.resource;
    v.key = st.key;
    if (busy) {
      v.delivery = st.current_delivery;
      v.handler_id = st.current_handler;
      v.purpose = !st.cycle ? (st.current_handler.empty() ? "" : "event/index")
                  : !st.cycle->timer_id.empty() ? "timer"
                  : !st.cycle->plan.purpose.empty()
                      ? st.cycle->plan.purpose
                      : (st.current_handler.empty() ? "" : "event/index");
    }
    // A change waits for the running step.
    v.pending = busy && st.changed;
    v.queued_events = st.raw_events.size();
    if (st.wake) v.wake_at = st.wake_at;
    v.waiting_for_indices = gated || st.index_dirty;
    out.push_back(std::move(v));
  }
  SortViews(out);
  return out;
}

std::vector<Processor::TimerView> Processor::Timers() const {
  HERALD_ASSERT_ON_LOOP(loop_);
  std::vector<TimerView> out;
  for (const auto& [id, st] : objects_) {
    for (const auto& [hid, t] : st.timers) {
      TimerView v;
      v.resource = *st.resource;
      v.key = st.key;
      v.handler_id = hid;
      if (t.id) v.next_run = t.at;
      v.due = t.pending;
      out.push_back(std::move(v));
    }
  }
  SortViews(out);
  return out;
}

}  // namespace herald::engine
