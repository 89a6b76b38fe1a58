// The engine's metrics (server/metrics/herald_metrics.h): counted on the loop
// as the dispatcher queues, sends and hears back about deliveries, with the
// same times it measures (a delivery's wait in its queue, its
// delivery-to-outcome latency); and gauges of loop-owned state, set by the
// loop when a scrape asks.
#include <memory>
#include <set>

#include "absl/synchronization/notification.h"
#include "server/engine/engine.h"

namespace herald::engine {

absl::string_view ReconcileResult(const Outcome& outcome) {
  if (!outcome.malformed.ok()) return "error";
  switch (outcome.status) {
    case OutcomeStatus::kSuccess:
    case OutcomeStatus::kSkipped:
      return "success";
    case OutcomeStatus::kTemporaryError:
      return outcome.delay.has_value() ? "requeue_after" : "requeue";
    default:
      return "error";
  }
}

Engine::Options Engine::WithMetrics(Options options,
                                    metrics::HeraldMetrics* own_metrics) {
  if (options.metrics == nullptr) options.metrics = own_metrics;
  if (options.watch.restarts == nullptr) {
    options.watch.restarts = options.metrics->watch_restarts_total;
  }
  return options;
}

Engine::ResourceMetrics& Engine::MetricsOf(const std::string& resource) {
  HERALD_ASSERT_ON_LOOP(&loop_);
  auto it = resource_metrics_.find(resource);
  if (it != resource_metrics_.end()) return it->second;
  ResourceMetrics& m = resource_metrics_[resource];
  // Every result from the start, so that rates over them exist at zero.
  for (const char* result : {"success", "error", "requeue", "requeue_after"}) {
    m.reconciles[result] = metrics_->reconcile_total->With({resource, result});
  }
  m.errors = metrics_->reconcile_errors_total->With({resource});
  m.reconcile_time = metrics_->reconcile_time_seconds->With({resource});
  m.adds = metrics_->workqueue_adds_total->With({resource});
  m.queue_duration =
      metrics_->workqueue_queue_duration_seconds->With({resource});
  return m;
}

Engine::HandlerMetrics& Engine::MetricsOfHandler(
    const std::string& resource, const std::string& handler_id) {
  HERALD_ASSERT_ON_LOOP(&loop_);
  HandlerMetrics& m = handler_metrics_[{resource, handler_id}];
  if (m.duration == nullptr) {
    m.duration = metrics_->handler_duration_seconds->With({handler_id});
  }
  return m;
}

void Engine::CountQueued(const Delivery& delivery) {
  HERALD_ASSERT_ON_LOOP(&loop_);
  if (delivery.resource == nullptr) return;  // An activity: no workqueue.
  MetricsOf(delivery.resource->FullName()).adds->Inc();
}

void Engine::CountDispatch(const DispatchEvent& e) {
  HERALD_ASSERT_ON_LOOP(&loop_);
  const Delivery& d = *e.delivery;
  const std::string resource =
      d.resource == nullptr ? "" : d.resource->FullName();
  HandlerMetrics& h = MetricsOfHandler(resource, d.handler_id);
  switch (e.kind) {
    case DispatchEvent::Kind::kDelivery: {
      metrics::Counter*& c = h.deliveries[d.cause];
      if (c == nullptr) {
        c = metrics_->deliveries_total->With(
            {resource, d.handler_id, std::string(CauseName(d.cause))});
      }
      c->Inc();
      if (d.resource != nullptr) {
        MetricsOf(resource).queue_duration->Observe(
            absl::ToDoubleSeconds(e.waited));
      }
      break;
    }
    case DispatchEvent::Kind::kOutcome: {
      const double seconds = absl::ToDoubleSeconds(e.latency);
      h.duration->Observe(seconds);
      // A daemon's answer ends its whole run: not a reconcile.
      if (d.resource == nullptr || d.cause == Cause::kDaemon) break;
      ResourceMetrics& r = MetricsOf(resource);
      const absl::string_view result = ReconcileResult(*e.outcome);
      r.reconciles.find(result)->second->Inc();
      if (result == "error") r.errors->Inc();
      r.reconcile_time->Observe(seconds);
      break;
    }
    case DispatchEvent::Kind::kRequeue:
      break;  // Counted as an add when it enters its queue again.
  }
}

void Engine::SetLoopGauges() {
  HERALD_ASSERT_ON_LOOP(&loop_);
  metrics_->handler_streams->With({})->Set(
      static_cast<double>(dispatcher_.stream_count()));
  metrics_->credits_available->With({})->Set(
      static_cast<double>(dispatcher_.free_credits()));
  const std::map<std::string, size_t> queued = dispatcher_.QueuedByResource();
  std::set<std::string> names;
  for (const auto& [name, m] : resource_metrics_) names.insert(name);
  for (const auto& [name, n] : queued) names.insert(name);
  for (const std::string& name : names) {
    auto it = queued.find(name);
    metrics_->workqueue_depth->With({name})->Set(
        it == queued.end() ? 0 : static_cast<double>(it->second));
  }
}

void Engine::CollectMetrics(absl::Duration wait) {
  if (absl::StatusOr<std::vector<WatchedCache>> caches = Caches();
      caches.ok()) {
    for (const WatchedCache& c : *caches) {
      metrics_->cache_objects->With({c.resource.FullName()})
          ->Set(static_cast<double>(c.store->size()));
    }
  }
  // Told when the task has run, or when the loop drops it unrun (stopped).
  struct Notifier {
    std::shared_ptr<absl::Notification> done =
        std::make_shared<absl::Notification>();
    ~Notifier() {
      if (!done->HasBeenNotified()) done->Notify();
    }
  };
  auto notifier = std::make_shared<Notifier>();
  std::shared_ptr<absl::Notification> done = notifier->done;
  loop_.Post([this, notifier = std::move(notifier)] { SetLoopGauges(); });
  done->WaitForNotificationWithTimeout(wait);
}

}  // namespace herald::engine
