// Daemons: one long-running delivery per object and daemon handler.
//
// A daemon starts when its object is seen and matches (after its initial
// delay), runs on a handler process without taking a credit, and ends when
// the handler returns. When the object is being deleted, stops matching, or
// the sidecar shuts down, the daemon's process gets a polite Stop, then after
// `cancellation_backoff` a forced one, and after `cancellation_timeout` the
// sidecar releases the object without the outcome. The object keeps the
// finalizer until every daemon is released. A daemon whose process goes away
// restarts on another process serving its handler.
#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "server/engine/causes.h"
#include "server/engine/outcomes.h"
#include "server/engine/processor.h"
#include "server/runtime/logging.h"
#include "server/runtime/proto_time.h"

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
      StopDaemon(id, h->id(),
                 deleting ? v1::STOP_REASON_OBJECT_DELETED
                          : v1::STOP_REASON_FILTER_MISMATCH);
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
  ds.phase = Phase::kRunning;
  ds.started = loop_->clock()->Now();
  ds.restart_at = absl::InfiniteFuture();
  if (ds.first_attempt == absl::InfinitePast()) ds.first_attempt = ds.started;
  v1::Delivery del =
      NewDelivery(st, *h, st.object->uid, st.object->resource_version);
  del.set_cause(static_cast<v1::Cause>(Cause::kDaemon));
  del.set_body_json(st.object->json);
  del.set_memo_json(st.memo.dump());
  del.set_restarted(ds.restarts > 0);
  del.set_retry(ds.retries);
  *del.mutable_started() = runtime::ToProtoTime(ds.first_attempt);
  ds.delivery_id = del.delivery_id();
  daemon_deliveries_[ds.delivery_id] = {id, handler_id};
  stats_[handler_id].deliveries++;
  const std::string did = ds.delivery_id;
  dispatcher_->SubmitLongRunning(
      std::move(del),
      [this, id, handler_id, did](const v1::Outcome& outcome,
                                  const std::string& stream_id) {
        return OnDaemonOutcome(id, handler_id, did, outcome, stream_id);
      },
      [this, id, handler_id, did](v1::Delivery* delivery) {
        // Its process went away: run it on another, unless it was stopping.
        auto it2 = objects_.find(id);
        if (it2 == objects_.end()) return false;
        auto d2 = it2->second.daemons.find(handler_id);
        if (d2 == it2->second.daemons.end() || d2->second.delivery_id != did) {
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
        delivery->set_restarted(true);
        HERALD_LOG(INFO, "engine")
            << "daemon " << handler_id << " on " << it2->second.key.ns << "/"
            << it2->second.key.name
            << ": its process went away; restarting it on another";
        return true;
      });
}

void Processor::StopDaemon(const Id& id, const std::string& handler_id,
                           v1::StopReason reason) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  ObjectState& st = it->second;
  auto d = st.daemons.find(handler_id);
  if (d == st.daemons.end()) return;
  DaemonState& ds = d->second;
  if (ds.phase == Phase::kStopping || ds.phase == Phase::kCancelled) return;
  const std::string stream = dispatcher_->StreamOf(ds.delivery_id);
  if (ds.phase != Phase::kRunning || stream.empty()) {
    // Not running anywhere: nothing to wait for.
    ReleaseDaemon(id, handler_id);
    return;
  }
  ds.phase = Phase::kStopping;
  ds.stop_reason = reason;
  v1::ConnectResponse msg;
  auto* stop = msg.mutable_stop();
  stop->set_delivery_id(ds.delivery_id);
  stop->set_reason(reason);
  stop->set_force(false);
  dispatcher_->SendTo(stream, msg);
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
  const std::string stream = dispatcher_->StreamOf(ds.delivery_id);
  if (stream.empty()) {
    ReleaseDaemon(id, handler_id);
    return;
  }
  v1::ConnectResponse msg;
  auto* stop = msg.mutable_stop();
  stop->set_delivery_id(ds.delivery_id);
  stop->set_reason(ds.stop_reason);
  stop->set_force(true);
  dispatcher_->SendTo(stream, msg);
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
  if (!d->second.delivery_id.empty()) {
    dispatcher_->Cancel(d->second.delivery_id);
    daemon_deliveries_.erase(d->second.delivery_id);
    DaemonReleased();
  }
  st.daemons.erase(d);
  // A deletion may wait for this daemon to let the finalizer go.
  loop_->Post([this, id] { Reconsider(id); });
}

void Processor::DropDaemons(ObjectState& st) {
  for (auto& [hid, ds] : st.daemons) {
    if (ds.timer) loop_->Cancel(ds.timer);
    if (ds.delivery_id.empty()) continue;
    const std::string stream = dispatcher_->StreamOf(ds.delivery_id);
    if (!stream.empty()) {
      v1::ConnectResponse msg;
      auto* stop = msg.mutable_stop();
      stop->set_delivery_id(ds.delivery_id);
      stop->set_reason(v1::STOP_REASON_OBJECT_DELETED);
      stop->set_force(true);
      dispatcher_->SendTo(stream, msg);
    }
    dispatcher_->Cancel(ds.delivery_id);
    daemon_deliveries_.erase(ds.delivery_id);
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
    StopDaemon(id, hid, v1::STOP_REASON_SHUTDOWN);
  }
  DaemonReleased();  // None was running.
}

absl::Status Processor::OnDaemonOutcome(const Id& id,
                                        const std::string& handler_id,
                                        const std::string& delivery_id,
                                        const v1::Outcome& outcome,
                                        const std::string& stream_id) {
  daemon_deliveries_.erase(delivery_id);
  DaemonReleased();
  auto it = objects_.find(id);
  if (it == objects_.end()) return absl::OkStatus();
  ObjectState& st = it->second;
  auto d = st.daemons.find(handler_id);
  const Handler* h = registry_->Find(handler_id);
  if (d == st.daemons.end() || d->second.delivery_id != delivery_id ||
      h == nullptr) {
    return absl::OkStatus();
  }
  ParsedChanges parsed = ParseChanges(outcome);
  if (parsed.error.ok() && outcome.has_changes()) {
    ApplyDaemonChanges(id, handler_id, outcome.changes(), parsed.patch,
                       parsed.status_patch, stream_id);
  }
  if (parsed.error.ok() && !parsed.memo_patch.empty()) {
    st.memo.merge_patch(parsed.memo_patch);
  }
  DaemonState& ds = d->second;
  ds.delivery_id.clear();
  if (ds.phase == Phase::kStopping || ds.phase == Phase::kCancelled) {
    stats_[handler_id].successes++;
    ReleaseDaemon(id, handler_id);
    return parsed.error;
  }
  v1::OutcomeStatus status = outcome.status();
  if (!parsed.error.ok() || status == v1::OUTCOME_STATUS_UNSPECIFIED) {
    status = v1::OUTCOME_STATUS_UNEXPECTED_ERROR;
  }
  status = ApplyErrorsMode(status, h->spec.errors);
  if (status == v1::OUTCOME_STATUS_TEMPORARY_ERROR && !stopping_daemons_) {
    // Restarted after the error's delay, as Kopf does.
    stats_[handler_id].temporary_failures++;
    const absl::Duration delay =
        outcome.has_delay() ? runtime::FromProtoDuration(outcome.delay())
                            : h->backoff();
    ds.phase = Phase::kBackoff;
    ds.restarts++;
    ds.retries++;
    ds.restart_at = loop_->clock()->Now() + delay;
    ds.timer = loop_->PostAt(
        ds.restart_at, [this, id, handler_id] { StartDaemon(id, handler_id); });
  } else {
    // Returned (or failed for good): not restarted while the object matches.
    if (status == v1::OUTCOME_STATUS_PERMANENT_ERROR) {
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
  return parsed.error;
}

absl::Status Processor::OnInterimChanges(const std::string& delivery_id,
                                         const v1::ObjectChanges& changes,
                                         const std::string& stream_id) {
  HERALD_ASSERT_ON_LOOP(loop_);
  auto owner = daemon_deliveries_.find(delivery_id);
  if (owner == daemon_deliveries_.end()) {
    return absl::NotFoundError(absl::StrCat(
        "interim_changes: delivery '", delivery_id,
        "' is not a running daemon; other handlers return their changes in "
        "their outcome"));
  }
  const auto [id, handler_id] = owner->second;
  v1::Outcome wrapped;
  *wrapped.mutable_changes() = changes;
  ParsedChanges parsed = ParseChanges(wrapped);
  if (!parsed.error.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("interim_changes: ", parsed.error.message()));
  }
  auto it = objects_.find(id);
  if (it == objects_.end()) return absl::OkStatus();
  if (!parsed.memo_patch.empty())
    it->second.memo.merge_patch(parsed.memo_patch);
  ApplyDaemonChanges(id, handler_id, changes, parsed.patch, parsed.status_patch,
                     stream_id);
  return absl::OkStatus();
}

void Processor::ApplyDaemonChanges(const Id& id, const std::string& handler_id,
                                   const v1::ObjectChanges& changes,
                                   const json& patch_in,
                                   const json& status_patch_in,
                                   const std::string& stream_id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  ObjectState& st = it->second;
  for (const auto& e : changes.events()) {
    writer_->PostEvent(
        kube::InvolvedObject{st.resource->ApiVersion(), st.resource->kind,
                             st.key.ns, st.key.name, UidOf(st), RvOf(st)},
        e.type() == v1::EVENT_TYPE_WARNING ? kube::EventKind::kWarning
                                           : kube::EventKind::kNormal,
        e.reason(), e.message());
  }
  json patch = patch_in;
  json status_patch = status_patch_in;
  if (!status_patch.empty() && !st.resource->has_status) {
    patch.merge_patch(json{{"status", status_patch}});
    status_patch = json::object();
  }
  auto report = [this, handler_id, stream_id](const std::string& what,
                                              const absl::Status& s) {
    HERALD_LOG(WARNING, "engine")
        << "daemon " << handler_id << ": " << what << " failed: " << s;
    const int http = kube::HttpStatusOf(s);
    if (http != 400 && http != 422) return;
    v1::ConnectResponse msg;
    auto* pe = msg.mutable_protocol_error();
    pe->set_code(v1::PROTOCOL_ERROR_CODE_PATCH_REJECTED);
    pe->set_message(absl::StrCat("the ", what, " of daemon '", handler_id,
                                 "' was rejected: ", s.message()));
    dispatcher_->SendTo(stream_id, msg);
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
      v.delivery_id = ds.delivery_id;
      v.stream_id = dispatcher_->StreamOf(ds.delivery_id);
      v.state = PhaseName(ds.phase);
      if (ds.phase == Phase::kRunning && v.stream_id.empty()) {
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
