// The sidecar's metrics, every family registered in one place with its
// labels and help (docs/operating.md lists them). Names shared with
// controller-runtime mean what they mean there, so that dashboards made for
// controller-runtime operators work: a "controller" is a resource's full
// name ("kopfexamples.v1.kopf.dev"), and one reconcile is one handler's
// delivery about an object, answered.
//
// Who updates what:
//   - the engine (server/engine/engine_metrics.cc), on its loop, as
//     deliveries are queued, sent and answered: reconcile_*, workqueue_adds,
//     workqueue_queue_duration, deliveries, handler_duration; and, when
//     /metrics is read, the gauges of loop-owned state (streams, credits,
//     workqueue_depth) and of the caches;
//   - the API client's transport (server/kube/counted_http_client):
//     rest_client_requests_total;
//   - each watcher (server/kube/watcher): watch_restarts_total;
//   - leader election, through SetLeader.
#ifndef HERALD_SERVER_METRICS_HERALD_METRICS_H_
#define HERALD_SERVER_METRICS_HERALD_METRICS_H_

#include <string>

#include "server/metrics/metrics.h"

namespace herald::metrics {

class HeraldMetrics {
 public:
  HeraldMetrics();
  HeraldMetrics(const HeraldMetrics&) = delete;
  HeraldMetrics& operator=(const HeraldMetrics&) = delete;

  Registry& registry() { return registry_; }
  // Registry().Render(): what /metrics answers.
  std::string Render() const { return registry_.Render(); }

  // leader_election_master_status{name}: 1 while this sidecar holds the
  // lease `name`, 0 otherwise. Not exported until first called. Any thread.
  void SetLeader(const std::string& name, bool leading);

 private:
  Registry registry_;

 public:
  // controller-runtime's names.
  Family<Counter>* const reconcile_total;           // controller, result
  Family<Counter>* const reconcile_errors_total;    // controller
  Family<Histogram>* const reconcile_time_seconds;  // controller
  Family<Gauge>* const workqueue_depth;             // name
  Family<Counter>* const workqueue_adds_total;      // name
  Family<Histogram>* const workqueue_queue_duration_seconds;  // name
  Family<Counter>* const rest_client_requests_total;   // code, method, host
  Family<Gauge>* const leader_election_master_status;  // name
  // Herald's own.
  Family<Counter>* const deliveries_total;  // resource, handler, cause
  Family<Gauge>* const handler_streams;
  Family<Gauge>* const credits_available;
  Family<Gauge>* const cache_objects;                 // resource
  Family<Counter>* const watch_restarts_total;        // resource
  Family<Histogram>* const handler_duration_seconds;  // handler
};

}  // namespace herald::metrics

#endif  // HERALD_SERVER_METRICS_HERALD_METRICS_H_
