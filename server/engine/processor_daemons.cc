// Daemons: one long-running delivery per object and daemon handler.
//
// A daemon starts when its object is seen and matches (after its initial
// delay), runs on a handler process without taking a credit, and ends when
// the handler returns. When the object is being deleted, stops matching, or
// the sidecar shuts down, the daemon's process gets a polite Stop, then after
// `cancellation_backoff` a forced one, and after `cancellation_timeout` the
// sidecar releases the object without the outcome. The object keeps the
// finalizer until every daemon is released. A daemon whose process goes away
// restarts on another process serving its handler. A daemon that fails
// restarts after the error's delay (or its backoff) until its `retries` or
// `timeout` limit, counted from its first attempt as Kopf counts them.
#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "server/engine/causes.h"
#include "server/engine/outcomes.h"
#include "server/engine/processor.h"
#include "server/runtime/logging.h"

namespace herald::engine {
namespace {

using nlohmann::json;
using Phase = Processor::DaemonState::Phase;

const char* PhaseName(Phase p) {
  switch (p) {
    case Phase::kStarting:
      return "starting";
    case Phase::kRunning:
      return "running";
    case Phase::kStopping:
      return "stopping";
    case Phase::kCancelled:
      return "cancelled";
    case Phase::kBackoff:
      return "backoff";
    case Phase::kDone:
      return "done";
  }
  return "";
}

}  // namespace

void Processor::SyncDaemons(const Id& id, ObjectState& st,
                            const std::vector<const Handler*>& handlers) {
  const bool deleting = Deleting(st.body);
  for (const Handler* h : handlers) {
    if (h->cause() != Cause::kDaemon) continue;
    const bool match = !deleting && MatchesMeta(*h, st.body);
    auto d = st.daemons.find(h->id());
    if (stopping_daemons_ && d == st.daemons.end()) continue;
    if (match && d == st.daemons.end()) {
      DaemonState& ds = st.daemons[h->id()];
      ds.phase = Phase::kStarting;
      const absl::Duration delay = h->spec.daemon.initial_delay;
      const std::string hid = h->id();
      ds.timer = loop_->PostAt(loop_->clock()->Now() + delay,
                               [this, id, hid] { StartDaemon(id, hid); });
    } else if (!match && d != st.daemons.end()) {
      StopDaemon(
          id, h->id(),
          deleting ? StopReason::kObjectDeleted : StopReason::kFilterMismatch);
    }
  }
}

void Processor::StartDaemon(const Id& id, const std::string& handler_id) {
  auto it = objects_.find(id);
  if (it == objects_.end() || !it->second.object) return;
  ObjectState& st = it->second;
  auto d = st.daemons.find(handler_id);
  const Handler* h = registry_->Find(handler_id);
  if (d == st.daemons.end() || h == nullptr) return;
  DaemonState& ds = d->second;
  ds.timer = 0;
  if (ds.first_attempt != absl::InfinitePast()) {
    // Restarted after an error: Kopf's retries and timeout limits, counted
    // from the first attempt, stop it for good.
    ProgressRecord limits;
    limits.started = ds.first_attempt;
    limits.retries = static_cast<int>(ds.retries);
    if (StopAtLimits(*h, loop_->clock()->Now(), limits)) {
      stats_[handler_id].permanent_failures++;
      HERALD_LOG(ERROR, "engine")
          << "daemon " << handler_id << " on " << st.key.ns << "/"
          << st.key.name << ": " << limits.message.value_or("")
          << "; not restarted";
      ds.phase = Phase::kDone;
      ds.retries = 0;
      ds.first_attempt = absl::InfinitePast();
      // A deletion may wait for this daemon.
      loop_->Post([this, id] { Reconsider(id); });
      return;
    }
  }
  ds.phase = Phase::kRunning;
  ds.started = loop_->clock()->Now();
  ds.restart_at = absl::InfiniteFuture();
  if (ds.first_attempt == absl::InfinitePast()) ds.first_attempt = ds.started;
  Delivery del = NewDelivery(st, *h, st.object);
  del.cause = Cause::kDaemon;
  del.memo_json = st.memo.dump();
  del.restarted = ds.restarts > 0;
  del.retry = ds.retries;
  del.started = ds.first_attempt;
  ds.delivery = del.id;
  daemon_deliveries_[ds.delivery] = {id, handler_id};
  stats_[handler_id].deliveries++;
  const DeliveryId did = ds.delivery;
  dispatcher_->SubmitLongRunning(
      std::move(del),
      [this, id, handler_id](const Outcome& outcome, StreamId stream) {
        return OnDaemonOutcome(id, handler_id, outcome, stream);
      },
      [this, id, handler_id, did](Delivery* delivery) {
        // Its process went away: run it on another, unless it was stopping.
        auto it2 = objects_.find(id);
        if (it2 == objects_.end()) return false;
        auto d2 = it2->second.daemons.find(handler_id);
        if (d2 == it2->second.daemons.end() || d2->second.delivery != did) {
          return false;
        }
        if (stopping_daemons_ || d2->second.phase == Phase::kStopping ||
            d2->second.phase == Phase::kCancelled) {
          loop_->Post(
              [this, id, handler_id] { ReleaseDaemon(id, handler_id); });
          return false;
        }
        d2->second.restarts++;
        d2->second.started = loop_->clock()->Now();
        delivery->restarted = true;
        HERALD_LOG(INFO, "engine")
            << "daemon " << handler_id << " on " << it2->second.key.ns << "/"
            << it2->second.key.name
            << ": its process went away; restarting it on another";
        return true;
      });
}

void Processor::StopDaemon(const Id& id, const std::string& handler_id,
                           StopReason reason) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  ObjectState& st = it->second;
  auto d = st.daemons.find(handler_id);
  if (d == st.daemons.end()) return;
  DaemonState& ds = d->second;
  if (ds.phase == Phase::kStopping || ds.phase == Phase::kCancelled) return;
  StreamSink* sink = dispatcher_->Sink(dispatcher_->StreamOf(ds.delivery));
  if (ds.phase != Phase::kRunning || sink == nullptr) {
    // Not running anywhere: nothing to wait for.
    ReleaseDaemon(id, handler_id);
    return;
  }
  ds.phase = Phase::kStopping;
  ds.stop_reason = reason;
  sink->Stop(ds.delivery, reason, /*force=*/false);
  const Handler* h = registry_->Find(handler_id);
  const absl::Duration backoff =
      h ? h->spec.daemon.cancellation_backoff : absl::ZeroDuration();
  if (ds.timer) loop_->Cancel(ds.timer);
  ds.timer = loop_->PostAt(
      loop_->clock()->Now() + backoff,
      [this, id, handler_id] { ForceStopDaemon(id, handler_id); });
}

void Processor::ForceStopDaemon(const Id& id, const std::string& handler_id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  auto d = it->second.daemons.find(handler_id);
  if (d == it->second.daemons.end() || d->second.phase != Phase::kStopping) {
    return;
  }
  DaemonState& ds = d->second;
  ds.timer = 0;
  ds.phase = Phase::kCancelled;
  StreamSink* sink = dispatcher_->Sink(dispatcher_->StreamOf(ds.delivery));
  if (sink == nullptr) {
    ReleaseDaemon(id, handler_id);
    return;
  }
  sink->Stop(ds.delivery, ds.stop_reason, /*force=*/true);
  const Handler* h = registry_->Find(handler_id);
  if (h && h->spec.daemon.cancellation_timeout) {
    const absl::Duration timeout = *h->spec.daemon.cancellation_timeout;
    ds.timer =
        loop_->PostAt(loop_->clock()->Now() + timeout, [this, id, handler_id] {
          auto it2 = objects_.find(id);
          if (it2 == objects_.end()) return;
          auto d2 = it2->second.daemons.find(handler_id);
          if (d2 == it2->second.daemons.end()) return;
          d2->second.timer = 0;
          HERALD_LOG(WARNING, "engine")
              << "daemon " << handler_id << " on " << it2->second.key.ns << "/"
              << it2->second.key.name
              << " did not end within its "
                 "cancellation_timeout; released";
          ReleaseDaemon(id, handler_id);
        });
  }
}

void Processor::ReleaseDaemon(const Id& id, const std::string& handler_id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  ObjectState& st = it->second;
  auto d = st.daemons.find(handler_id);
  if (d == st.daemons.end()) return;
  if (d->second.timer) loop_->Cancel(d->second.timer);
  if (d->second.delivery != 0) {
    dispatcher_->Cancel(d->second.delivery);
    daemon_deliveries_.erase(d->second.delivery);
    DaemonReleased();
  }
  st.daemons.erase(d);
  // A deletion may wait for this daemon to let the finalizer go.
  loop_->Post([this, id] { Reconsider(id); });
}

void Processor::DropDaemons(ObjectState& st) {
  for (auto& [hid, ds] : st.daemons) {
    if (ds.timer) loop_->Cancel(ds.timer);
    if (ds.delivery == 0) continue;
    if (StreamSink* sink =
            dispatcher_->Sink(dispatcher_->StreamOf(ds.delivery))) {
      sink->Stop(ds.delivery, StopReason::kObjectDeleted, /*force=*/true);
    }
    dispatcher_->Cancel(ds.delivery);
    daemon_deliveries_.erase(ds.delivery);
  }
  st.daemons.clear();
  DaemonReleased();
}

void Processor::DaemonReleased() {
  if (!daemons_released_ || !daemon_deliveries_.empty()) return;
  std::function<void()> released = std::move(daemons_released_);
  daemons_released_ = nullptr;
  loop_->Post(std::move(released));
}

bool Processor::DaemonsHold(const ObjectState& st) const {
  for (const auto& [hid, ds] : st.daemons) {
    if (ds.phase != Phase::kDone) return true;
  }
  return false;
}

void Processor::StopAllDaemons(std::function<void()> released) {
  HERALD_ASSERT_ON_LOOP(loop_);
  stopping_daemons_ = true;
  daemons_released_ = std::move(released);
  std::vector<std::pair<Id, std::string>> all;
  for (const auto& [did, owner] : daemon_deliveries_) all.push_back(owner);
  for (auto& [id, st] : objects_) {
    for (auto& [hid, ds] : st.daemons) {
      if (ds.phase == Phase::kStarting || ds.phase == Phase::kBackoff) {
        all.push_back({id, hid});
      }
    }
  }
  for (const auto& [id, hid] : all) {
    StopDaemon(id, hid, StopReason::kShutdown);
  }
  DaemonReleased();  // None was running.
}

absl::Status Processor::OnDaemonOutcome(const Id& id,
                                        const std::string& handler_id,
                                        const Outcome& outcome,
                                        StreamId stream) {
  const DeliveryId delivery = outcome.delivery_id;
  daemon_deliveries_.erase(delivery);
  DaemonReleased();
  auto it = objects_.find(id);
  if (it == objects_.end()) return absl::OkStatus();
  ObjectState& st = it->second;
  auto d = st.daemons.find(handler_id);
  const Handler* h = registry_->Find(handler_id);
  if (d == st.daemons.end() || d->second.delivery != delivery || h == nullptr) {
    return absl::OkStatus();
  }
  const absl::Status& bad = outcome.malformed;
  if (bad.ok()) {
    ApplyDaemonChanges(id, handler_id, outcome.changes, stream);
    if (!outcome.changes.memo_patch.empty()) {
      st.memo.merge_patch(outcome.changes.memo_patch);
    }
  }
  DaemonState& ds = d->second;
  ds.delivery = 0;
  if (ds.phase == Phase::kStopping || ds.phase == Phase::kCancelled) {
    stats_[handler_id].successes++;
    ReleaseDaemon(id, handler_id);
    return bad;
  }
  OutcomeStatus status = outcome.status;
  if (!bad.ok() || status == OutcomeStatus::kUnspecified) {
    status = OutcomeStatus::kUnexpectedError;
  }
  status = ApplyErrorsMode(status, h->spec.errors);
  if (status == OutcomeStatus::kTemporaryError && !stopping_daemons_) {
    // Restarted after the error's delay, as Kopf does.
    stats_[handler_id].temporary_failures++;
    const absl::Duration delay = outcome.delay.value_or(h->backoff());
    ds.phase = Phase::kBackoff;
    ds.restarts++;
    ds.retries++;
    ds.restart_at = loop_->clock()->Now() + delay;
    ds.timer = loop_->PostAt(
        ds.restart_at, [this, id, handler_id] { StartDaemon(id, handler_id); });
  } else {
    // Returned (or failed for good): not restarted while the object matches.
    if (status == OutcomeStatus::kPermanentError) {
      stats_[handler_id].permanent_failures++;
    } else {
      stats_[handler_id].successes++;
    }
    ds.phase = Phase::kDone;
    ds.retries = 0;
    ds.first_attempt = absl::InfinitePast();
    // A deletion may wait for this daemon.
    loop_->Post([this, id] { Reconsider(id); });
  }
  return bad;
}

absl::Status Processor::OnInterimChanges(DeliveryId delivery,
                                         const Changes& changes,
                                         StreamId stream) {
  HERALD_ASSERT_ON_LOOP(loop_);
  auto owner = daemon_deliveries_.find(delivery);
  if (owner == daemon_deliveries_.end()) {
    return absl::NotFoundError(absl::StrCat(
        "interim_changes: delivery '", DeliveryName(delivery),
        "' is not a running daemon; other handlers return their changes in "
        "their outcome"));
  }
  const auto [id, handler_id] = owner->second;
  auto it = objects_.find(id);
  if (it == objects_.end()) return absl::OkStatus();
  if (!changes.memo_patch.empty())
    it->second.memo.merge_patch(changes.memo_patch);
  ApplyDaemonChanges(id, handler_id, changes, stream);
  return absl::OkStatus();
}

void Processor::ApplyDaemonChanges(const Id& id, const std::string& handler_id,
                                   const Changes& changes, StreamId stream) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  ObjectState& st = it->second;
  for (const auto& e : changes.events) {
    writer_->PostEvent(
        kube::InvolvedObject{st.resource->ApiVersion(), st.resource->kind,
                             st.key.ns, st.key.name, UidOf(st), RvOf(st)},
        e.type == EventType::kWarning ? kube::EventKind::kWarning
                                      : kube::EventKind::kNormal,
        e.reason, e.message);
  }
  json patch = changes.patch;
  json status_patch = changes.status_patch;
  if (!status_patch.empty() && !st.resource->has_status) {
    patch.merge_patch(json{{"status", status_patch}});
    status_patch = json::object();
  }
  auto report = [this, handler_id, stream](const std::string& what,
                                           const absl::Status& s) {
    HERALD_LOG(WARNING, "engine")
        << "daemon " << handler_id << ": " << what << " failed: " << s;
    const int http = kube::HttpStatusOf(s);
    if (http != 400 && http != 422) return;
    if (StreamSink* sink = dispatcher_->Sink(stream)) {
      sink->Error(StreamError::kPatchRejected, 0,
                  absl::StrCat("the ", what, " of daemon '", handler_id,
                               "' was rejected: ", s.message()));
    }
  };
  if (!patch.empty()) {
    writer_->Patch(*st.resource, st.key, kube::PatchType::kMerge, patch.dump(),
                   false, [report](const absl::StatusOr<std::string>& r) {
                     if (!r.ok()) report("patch", r.status());
                   });
  }
  if (!status_patch.empty()) {
    writer_->Patch(*st.resource, st.key, kube::PatchType::kMerge,
                   json{{"status", status_patch}}.dump(), true,
                   [report](const absl::StatusOr<std::string>& r) {
                     if (!r.ok()) report("status patch", r.status());
                   });
  }
}

std::vector<Processor::DaemonView> Processor::Daemons() const {
  HERALD_ASSERT_ON_LOOP(loop_);
  std::vector<DaemonView> out;
  for (const auto& [id, st] : objects_) {
    for (const auto& [hid, ds] : st.daemons) {
      DaemonView v;
      v.resource = *st.resource;
      v.key = st.key;
      v.handler_id = hid;
      v.delivery = ds.delivery;
      v.stream = dispatcher_->StreamOf(ds.delivery);
      v.state = PhaseName(ds.phase);
      if (ds.phase == Phase::kRunning && v.stream == 0) {
        v.state = "starting";  // Queued: waits for a process.
      }
      v.started = ds.started;
      v.restart_at = ds.restart_at;
      v.restarts = ds.restarts;
      out.push_back(std::move(v));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const DaemonView& a, const DaemonView& b) {
              return std::tie(a.key.ns, a.key.name, a.handler_id) <
                     std::tie(b.key.ns, b.key.name, b.handler_id);
            });
  return out;
}

}  // namespace herald::engine
