// The engine: the loop and its components wired together (registry,
// dispatcher, processor, activities, writer, watches), and what the handler
// streams and inspection ask of it from other threads. Registrations are in
// engine_registration.cc, leadership in engine_leadership.cc, metrics in
// engine_metrics.cc, inspection in engine_inspection.cc.
#include "server/engine/engine.h"

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "nlohmann/json.hpp"
#include "server/engine/outcomes.h"
#include "server/runtime/logging.h"

namespace herald::engine {

// Sends watch events to the processor and to the observer.
// A standby's processor takes nothing: `feeding` is false until it leads.
// The watch updates its store before it calls here, so an event dropped
// before `feeding` turned true is in the store Lead reads after.
class Engine::Tee : public kube::WatchHandler {
 public:
  Tee(Processor* processor, kube::WatchHandler* observer,
      const std::atomic<bool>* feeding)
      : processor_(processor), observer_(observer), feeding_(feeding) {}
  void OnEvent(const kube::ResourceInfo& r,
               const kube::WatchEvent& e) override {
    if (observer_) observer_->OnEvent(r, e);
    if (feeding_->load()) processor_->OnEvent(r, e);
  }
  void OnListed(const kube::ResourceInfo& r, const std::string& ns) override {
    if (observer_) observer_->OnListed(r, ns);
    if (feeding_->load()) processor_->OnListed(r, ns);
  }

 private:
  Processor* processor_;
  kube::WatchHandler* observer_;
  const std::atomic<bool>* feeding_;
};

Engine::Engine(kube::ApiClient* api, kube::Discovery* discovery,
               Options options)
    : api_(api),
      discovery_(discovery),
      own_metrics_(options.metrics == nullptr
                       ? std::make_unique<metrics::HeraldMetrics>()
                       : nullptr),
      options_(WithMetrics(std::move(options), own_metrics_.get())) {
  writer_ = std::make_unique<ApiObjectWriter>(api_, &loop_);
  processor_ = std::make_unique<Processor>(&loop_, &registry_, &dispatcher_,
                                           writer_.get(), options_.engine);
  activities_ = std::make_unique<Activities>(
      &loop_, &registry_, &dispatcher_, processor_.get(), options_.on_fatal);
  tee_ = std::make_unique<Tee>(processor_.get(), options_.observer, &feeding_);
  dispatcher_.set_observer([this](const DispatchEvent& e) {
    CountDispatch(e);
    for (const auto& [id, fn] : subscribers_) fn(e);
  });
  if (options_.standby || options_.may_deliver) {
    dispatcher_.set_gate([this](const Delivery& d) {
      return d.cause == Cause::kProbe || Delivering();
    });
  }
  dispatcher_.set_on_queued([this](const Delivery& d) { CountQueued(d); });
}

Engine::~Engine() { Stop(); }

void Engine::Start() {
  loop_thread_ = std::thread([this] { loop_.Run(); });
}

void Engine::Stop() {
  stopping_flag_ = true;
  // No lock is held while waiting below: the pending resolver and
  // registration threads may be in an API call, watchers in a request that
  // takes a while to end, and the loop keeps serving meanwhile (it never
  // waits for this thread).
  {
    absl::MutexLock lock(&pending_mu_);
    pending_stop_ = true;
  }
  if (!pending_stopped_.HasBeenNotified()) pending_stopped_.Notify();
  if (pending_thread_.joinable()) pending_thread_.join();
  std::vector<RegistrationThread> registrations;
  {
    absl::MutexLock lock(&registrations_mu_);
    if (stopping_) return;
    stopping_ = true;
    registrations.swap(registrations_);
  }
  for (auto& r : registrations) r.thread.join();
  // No registration starts a watch after this: they start on the loop, and
  // look at `loop_stopping_` there.
  auto take = [this] {
    loop_stopping_ = true;
    absl::MutexLock lock(&watches_mu_);
    for (auto& w : watches_) stopped_watches_.push_back(std::move(w));
    watches_.clear();
    watches_closed_ = true;
    watched_names_.clear();
  };
  if (!loop_thread_.joinable() || !RunOnLoop(take)) take();
  for (auto& w : stopped_watches_) w->Stop();
  loop_.Stop();
  if (loop_thread_.joinable()) loop_thread_.join();
}

bool Engine::Spawn(std::function<void()> fn) {
  absl::MutexLock lock(&registrations_mu_);
  if (stopping_) return false;
  for (auto it = registrations_.begin(); it != registrations_.end();) {
    if (it->done->load()) {
      it->thread.join();  // Done: returns at once.
      it = registrations_.erase(it);
    } else {
      ++it;
    }
  }
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::thread thread([fn = std::move(fn), done] {
    fn();
    done->store(true);
  });
  registrations_.push_back({std::move(thread), std::move(done)});
  return true;
}

void Engine::StartWatch(const kube::ResourceInfo& resource) {
  HERALD_ASSERT_ON_LOOP(&loop_);
  if (loop_stopping_) return;
  const std::string name = resource.FullName();
  const std::vector<kube::ResourceWatch*> watches = WatchList();
  for (size_t i = 0; i < watches.size(); ++i) {
    if (watched_names_[i] == name ||
        watches[i]->resource().FullName() == name) {
      // Already watched: look at its objects again for the new handlers.
      loop_.Post([this, name] { processor_->Reprocess(name); });
      return;
    }
  }
  StartWatchByName(name);
}

void Engine::StartWatchByName(const std::string& name) {
  HERALD_ASSERT_ON_LOOP(&loop_);
  if (loop_stopping_) return;
  auto w = std::make_unique<kube::ResourceWatch>(
      api_, discovery_, name, options_.scope, tee_.get(), options_.watch);
  w->Start();
  {
    absl::MutexLock lock(&watches_mu_);
    watches_.push_back(std::move(w));
  }
  watched_names_.push_back(name);
}

void Engine::Watch(const std::string& resource_name) {
  // Resolved first (off the caller's thread), so that a handler registered
  // for the same resource under another name shares this watch instead of
  // starting a second one. A resource that does not exist yet gets a watch
  // that waits for it.
  Spawn([this, resource_name] {
    auto resolved = discovery_->Resolve(resource_name);
    loop_.Post([this, resource_name, resolved = std::move(resolved)] {
      if (resolved.ok()) {
        StartWatch(*resolved);
      } else {
        StartWatchByName(resource_name);
      }
    });
  });
}

StreamId Engine::NewStreamId() { return next_stream_.fetch_add(1); }

void Engine::OnOutcome(StreamId stream_id, Outcome outcome) {
  loop_.Post([this, stream_id, outcome = std::move(outcome)] {
    StreamError code = StreamError::kNotRegistered;
    absl::Status st = dispatcher_.OnOutcome(stream_id, outcome, &code);
    auto it = sinks_.find(stream_id);
    if (it == sinks_.end()) {
      NotRegistered(stream_id, "outcome", outcome.delivery_id);
      return;
    }
    if (st.ok()) return;
    if (code == StreamError::kMalformedJson) {
      // The session logs the error it sends.
      it->second->Error(code, outcome.delivery_id, std::string(st.message()));
      return;
    }
    // The session took the outcome of a delivery in flight and acked it;
    // the engine let the delivery go meanwhile (a daemon released at its
    // cancellation_timeout, a probe abandoned).
    HERALD_LOG(INFO, "engine")
        << StreamName(stream_id) << ": the outcome of delivery '"
        << DeliveryName(outcome.delivery_id)
        << "' came after the sidecar stopped waiting for it; dropped";
  });
}

void Engine::SetCredits(StreamId stream_id, uint32_t credits) {
  loop_.Post([this, stream_id, credits] {
    absl::Status st = dispatcher_.SetCredits(stream_id, credits);
    auto it = sinks_.find(stream_id);
    if (it == sinks_.end()) {
      NotRegistered(stream_id, "set_credits", 0);
      return;
    }
    if (!st.ok()) {
      it->second->Error(StreamError::kInvalidArgument, 0,
                        absl::StrCat("set_credits: ", st.message()));
    }
  });
}

void Engine::InterimChanges(StreamId stream_id, DeliveryId delivery,
                            absl::StatusOr<Changes> changes) {
  loop_.Post([this, stream_id, delivery, changes = std::move(changes)] {
    auto it = sinks_.find(stream_id);
    if (it == sinks_.end()) {
      NotRegistered(stream_id, "interim_changes", delivery);
      return;
    }
    StreamError code = StreamError::kInvalidArgument;
    absl::Status st;
    if (dispatcher_.InFlight(stream_id, delivery) == nullptr) {
      code = StreamError::kUnknownDelivery;
      st = absl::NotFoundError(
          absl::StrCat("interim_changes: delivery '", DeliveryName(delivery),
                       "' is not in flight on this stream"));
    } else if (!changes.ok()) {
      code = StreamError::kMalformedJson;
      st = absl::InvalidArgumentError(
          absl::StrCat("interim_changes: ", changes.status().message()));
    } else {
      st = processor_->OnInterimChanges(delivery, *changes, stream_id);
    }
    if (!st.ok()) it->second->Error(code, delivery, std::string(st.message()));
  });
}

bool Engine::RunOnLoop(std::function<void()> fn) {
  if (loop_.InLoopThread()) {
    // The loop would wait for itself.
    HERALD_LOG(ERROR, "engine") << "RunOnLoop called on the loop; not run";
    return false;
  }
  // `done` is told when the task has run, or when it is destroyed without
  // running (Post refused it, or Stop released it): whoever holds the last
  // reference to `signal` notifies.
  struct Signal {
    absl::Notification done;
    bool ran = false;
  };
  struct Notifier {
    std::shared_ptr<Signal> signal;
    ~Notifier() { signal->done.Notify(); }
  };
  auto signal = std::make_shared<Signal>();
  auto notifier = std::make_shared<Notifier>();
  notifier->signal = signal;
  loop_.Post([fn = std::move(fn), notifier = std::move(notifier)] {
    fn();
    notifier->signal->ran = true;
  });
  signal->done.WaitForNotification();
  return signal->ran;
}

void Engine::Drain(absl::Duration max_wait) {
  stopping_flag_ = true;
  // Loop-owned, but for `done`, which the loop notifies once every cleanup
  // handler has answered and every daemon is released.
  struct Wait {
    bool cleanups_answered = false;
    bool daemons_released = false;
    absl::Notification done;
    void Check() {
      if (cleanups_answered && daemons_released && !done.HasBeenNotified()) {
        done.Notify();
      }
    }
  };
  auto wait = std::make_shared<Wait>();
  const bool running = RunOnLoop([this, wait] {
    processor_->StopAllDaemons([wait] {
      wait->daemons_released = true;
      wait->Check();
    });
    // Cleanup handlers are the leader's: a standby, or a leader that lost
    // its lease, runs none.
    if (Delivering()) {
      activities_->RunCleanups([wait] {
        wait->cleanups_answered = true;
        wait->Check();
      });
    } else {
      wait->cleanups_answered = true;
      wait->Check();
    }
  });
  if (!running) return;  // Stopped.
  // Woken by the loop when drained; false then.
  if (!loop_.clock()->SleepFor(max_wait, &wait->done)) return;
  HERALD_LOG(WARNING, "engine")
      << "stop-wait of " << absl::FormatDuration(max_wait)
      << " passed with cleanup handlers or daemons still running";
}

bool Engine::ReadyOnLoop() {
  const std::vector<kube::ResourceWatch*> watches = WatchList();
  // A standby runs no index handler: its caches are what it has to fill.
  bool ready = !watches.empty() &&
               (role_ != Role::kLeading || processor_->IndicesReady()) &&
               registry_.pending().empty();
  for (auto* w : watches) ready = ready && w->synced();
  return ready;
}

bool Engine::Ready() {
  bool ready = false;
  RunOnLoop([&] { ready = ReadyOnLoop(); });
  return ready;
}

Engine::ProbeResult Engine::Probe(absl::Duration wait) {
  absl::MutexLock probe_lock(&probe_mu_);
  if (loop_.clock()->Now() - probe_at_ < options_.probe_cache) return probe_;
  // Loop-owned; the loop notifies `answered`.
  auto run = std::make_shared<Activities::ProbeRun>();
  auto answered = std::make_shared<absl::Notification>();
  const bool running = RunOnLoop([this, run, answered] {
    activities_->RunProbes(run, [answered] {
      if (!answered->HasBeenNotified()) answered->Notify();
    });
  });
  if (running) loop_.clock()->SleepFor(wait, answered.get());
  ProbeResult result{false, R"({"error":"the sidecar is stopping"})"};
  RunOnLoop([this, run, wait, &result] {
    activities_->AbandonProbes(*run, wait);
    result.ok = run->ok;
    result.json = run->results.dump();
  });
  probe_ = result;
  probe_at_ = loop_.clock()->Now();
  return probe_;
}

uint64_t Engine::Subscribe(std::function<void(const DispatchEvent&)> fn) {
  uint64_t id = 0;  // Stays 0 (no subscription) once stopped.
  RunOnLoop([&] {
    id = next_subscriber_++;
    subscribers_[id] = std::move(fn);
  });
  return id;
}

void Engine::Unsubscribe(uint64_t id) {
  loop_.Post([this, id] { subscribers_.erase(id); });
}

void Engine::Disconnect(StreamId stream_id) {
  loop_.Post([this, stream_id] {
    std::vector<DeliveryId> in_flight;
    for (const auto& s : dispatcher_.Streams()) {
      if (s.stream == stream_id) in_flight = s.in_flight;
    }
    dispatcher_.RemoveStream(stream_id);
    if (sinks_.erase(stream_id)) {
      std::string ids;
      for (const auto& id : in_flight) {
        absl::StrAppend(&ids, ids.empty() ? "" : ", ", "'", DeliveryName(id),
                        "'");
      }
      HERALD_LOG(INFO, "engine")
          << StreamName(stream_id) << " disconnected"
          << (in_flight.empty()
                  ? ""
                  : absl::StrCat("; requeued its deliveries in flight "
                                 "(daemons' as they decide): ",
                                 ids));
    }
  });
}

}  // namespace herald::engine
