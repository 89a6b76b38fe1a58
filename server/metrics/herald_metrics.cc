#include "server/metrics/herald_metrics.h"

namespace herald::metrics {

HeraldMetrics::HeraldMetrics()
    : reconcile_total(registry_.AddCounter(
          "controller_runtime_reconcile_total",
          "Total number of reconciliations per controller: handler "
          "deliveries about an object, answered, by the answer (success, "
          "error, requeue, requeue_after).",
          {"controller", "result"})),
      reconcile_errors_total(registry_.AddCounter(
          "controller_runtime_reconcile_errors_total",
          "Total number of reconciliation errors per controller: answers "
          "with a permanent or unexpected error.",
          {"controller"})),
      reconcile_time_seconds(registry_.AddHistogram(
          "controller_runtime_reconcile_time_seconds",
          "Length of time per reconciliation per controller: from a "
          "delivery's sending to its answer.",
          {"controller"})),
      workqueue_depth(registry_.AddGauge(
          "workqueue_depth",
          "Current depth of workqueue: deliveries waiting for a handler "
          "process's credit, per resource.",
          {"name"})),
      workqueue_adds_total(registry_.AddCounter(
          "workqueue_adds_total",
          "Total number of adds handled by workqueue: deliveries queued, "
          "requeues included, per resource.",
          {"name"})),
      workqueue_queue_duration_seconds(registry_.AddHistogram(
          "workqueue_queue_duration_seconds",
          "How long in seconds an item stays in workqueue before being "
          "requested: a delivery's wait for a credit, per resource.",
          {"name"})),
      rest_client_requests_total(registry_.AddCounter(
          "rest_client_requests_total",
          "Number of HTTP requests to the API server, partitioned by status "
          "code (<error> when no answer came), method, and host.",
          {"code", "method", "host"})),
      leader_election_master_status(registry_.AddGauge(
          "leader_election_master_status",
          "Gauge of if the reporting system is master of the relevant "
          "lease, 0 indicates backup, 1 indicates master. 'name' is the "
          "string used to identify the lease.",
          {"name"})),
      deliveries_total(registry_.AddCounter(
          "herald_deliveries_total",
          "Deliveries sent to handler processes, by resource (empty for "
          "startup, cleanup and probe handlers), handler id and cause.",
          {"resource", "handler", "cause"})),
      handler_streams(registry_.AddGauge(
          "herald_handler_streams",
          "Handler processes connected (registered streams).")),
      credits_available(registry_.AddGauge(
          "herald_credits_available",
          "Free credits over all handler streams: deliveries the sidecar "
          "could send now without waiting for an answer.")),
      cache_objects(registry_.AddGauge(
          "herald_cache_objects",
          "Objects in the sidecar's cache, per watched resource.",
          {"resource"})),
      watch_restarts_total(registry_.AddCounter(
          "herald_watch_restarts_total",
          "Watch requests reopened after one ended (server timeout, idle "
          "reconnect, error or 410 Gone), per resource.",
          {"resource"})),
      handler_duration_seconds(registry_.AddHistogram(
          "herald_handler_duration_seconds",
          "Time from a delivery's sending to its answer, per handler id.",
          {"handler"})) {}

void HeraldMetrics::SetLeader(const std::string& name, bool leading) {
  leader_election_master_status->With({name})->Set(leading ? 1 : 0);
}

}  // namespace herald::metrics
