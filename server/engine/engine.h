// The engine as one component: its loop thread, the registry, dispatcher,
// processor and writer, and the resource watches that registrations start.
// The gRPC layer calls it from its own threads; everything it owns runs on
// the loop, but for the watches and their caches, which inspection reads
// from any thread (Resources, Caches).
#ifndef HERALD_SERVER_ENGINE_ENGINE_H_
#define HERALD_SERVER_ENGINE_ENGINE_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "nlohmann/json.hpp"
#include "server/cache/object_store.h"
#include "server/engine/activities.h"
#include "server/engine/dispatcher.h"
#include "server/engine/inspection.h"
#include "server/engine/object_writer.h"
#include "server/engine/processor.h"
#include "server/engine/registry.h"
#include "server/kube/api_client.h"
#include "server/kube/discovery.h"
#include "server/kube/namespace_scope.h"
#include "server/kube/resource_watch.h"
#include "server/metrics/herald_metrics.h"
#include "server/runtime/event_loop.h"

namespace herald::engine {

// controller-runtime's result label for a handler's answer: "success"
// (success, skipped), "requeue_after" (a temporary error with a delay),
// "requeue" (one without), "error" (a permanent or unexpected error, or an
// answer whose JSON could not be taken). It says what the handler answered,
// before the handler's errors mode decides what follows.
absl::string_view ReconcileResult(const Outcome& outcome);

class Engine {
 public:
  struct Options {
    EngineOptions engine;
    kube::NamespaceScope scope;
    kube::WatchOptions watch;
    // Also told about every watch event (for logging); may be null.
    kube::WatchHandler* observer = nullptr;
    uint64_t max_message_bytes = 16 << 20;
    std::string version = "0.1.0";
    // Called (from the loop) when the sidecar cannot go on: a startup
    // handler failed for good. The App stops the sidecar with the message.
    std::function<void(const std::string&)> on_fatal;
    // How long probe results are reused.
    absl::Duration probe_cache = absl::Seconds(10);
    // The loop's clock, which everything the engine times reads (deadlines,
    // the probe cache, latencies); a FakeClock in tests.
    runtime::Clock* clock = runtime::Clock::Real();
    // Leader election. A standby's watches fill their caches, but the
    // processor takes nothing from them and nothing is delivered (probe
    // handlers excepted: /healthz answers on a standby too), so there are no
    // writes, Events, finalizers, timers or daemons, and startup handlers
    // wait, until Lead().
    bool standby = false;
    // When set, asked before every delivery but probes: false holds it
    // queued (the lease is not held, or its renew deadline passed). Any
    // thread; must be cheap.
    std::function<bool()> may_deliver;
    // What inspection shows of the election; null when it is off.
    std::function<LeadershipSnapshot()> leadership;
    // Where the engine counts (server/metrics/herald_metrics.h); null for
    // metrics of its own that nobody reads. The watches count their
    // restarts there unless `watch.restarts` is set.
    metrics::HeraldMetrics* metrics = nullptr;
  };

  Engine(kube::ApiClient* api, kube::Discovery* discovery, Options options);
  ~Engine();

  void Start();
  // Waits for the registration threads, stops the watches, then the loop.
  // Takes no lock while it waits, and the loop keeps running until the
  // watches are stopped. Idempotent.
  void Stop();

  // Watches a resource without handlers (yet), e.g. from the command line.
  void Watch(const std::string& resource_name);

  // From the session layer (any thread). Register checks the request first:
  // an invalid one (zero credits) is refused with InvalidArgument, before
  // anything is registered, and the stream may register again. Otherwise it
  // answers through `sink` (Registered) once its resources are resolved.
  StreamId NewStreamId();
  absl::Status Register(StreamId stream, Registration request,
                        const std::string& peer,
                        const std::shared_ptr<StreamSink>& sink);
  // An outcome the session took (and acknowledged) for a delivery in flight
  // on the stream, its JSON parsed; a malformed one is answered on the sink
  // with MALFORMED_JSON.
  void OnOutcome(StreamId stream, Outcome outcome);
  void SetCredits(StreamId stream, uint32_t credits);
  // Changes a running daemon sends; an error status when the session could
  // not parse them (MALFORMED_JSON once the delivery is known).
  void InterimChanges(StreamId stream, DeliveryId delivery,
                      absl::StatusOr<Changes> changes);
  void Disconnect(StreamId stream);

  // Handlers no process serves (declarative indices from the command line):
  // resolved and registered like a process's; rejections are logged.
  void AddHandlers(std::vector<HandlerSpec> specs);

  // For shutdown, before the handler streams close: asks daemons to stop and
  // runs cleanup handlers; returns when the loop tells it both are done, or
  // after `max_wait` on the loop's clock. Not on the loop.
  void Drain(absl::Duration max_wait);

  // True once there are watches, each has listed its objects, every index
  // is filled, and no handler is pending. Blocks on the loop briefly; any
  // thread. GetStatus and /readyz both answer it.
  bool Ready();

  // The probe handlers' results as a JSON object (handler id to result or
  // error), reused for Options::probe_cache. `ok` is false when a probe
  // failed or did not answer within `wait`. Any thread; blocks.
  struct ProbeResult {
    bool ok = true;
    std::string json;
  };
  ProbeResult Probe(absl::Duration wait);

  // Live deliveries and outcomes: `fn` runs on the loop for each; it must
  // not block. Returns an id for Unsubscribe.
  uint64_t Subscribe(std::function<void(const DispatchEvent&)> fn);
  void Unsubscribe(uint64_t id);

  // Leader election: a standby becomes the leader. Runs the startup handlers
  // registered while it stood by, then takes every cached object as a first
  // listing brings it (each object's annotations say where its handling
  // stands, as after a restart), and every event from then on. Any thread;
  // once (later calls do nothing).
  void Lead();
  // True while the engine delivers: not a standby, and `may_deliver` (if
  // set) says yes. Any thread.
  bool Delivering() const;
  // Leader election as inspection shows it (enabled false, leading true,
  // without it). Any thread; what a leader-status metric reads.
  LeadershipSnapshot Leadership() const;

  uint64_t max_message_bytes() const { return options_.max_message_bytes; }
  const std::string& version() const { return options_.version; }
  // True once Drain or Stop has begun. Any thread.
  bool stopping() const { return stopping_flag_.load(); }

  // Inspection: copies of the engine's state (see inspection.h). Not on the
  // loop. Those that read loop-owned state run there and wait for it;
  // Resources and Caches read thread-safe watches and stores without it.
  // Unavailable once the engine has stopped.
  absl::StatusOr<StatusSnapshot> Overview();
  absl::StatusOr<std::vector<ResourceSnapshot>> Resources();
  // The resolved resources' caches, in the order their watches started.
  absl::StatusOr<std::vector<WatchedCache>> Caches();
  absl::StatusOr<std::vector<HandlerSnapshot>> Handlers();
  absl::StatusOr<std::vector<ProcessSnapshot>> Processes();
  absl::StatusOr<std::vector<QueueSnapshot>> Queues();
  absl::StatusOr<std::vector<TimerSnapshot>> Timers();
  absl::StatusOr<std::vector<DaemonSnapshot>> Daemons();
  // NotFound naming `name` when no index handler has that id.
  absl::StatusOr<IndexSnapshot> Index(const std::string& name);
  // The memo and handler progress of the object `key` of `resource`, whose
  // cached body is `body`.
  absl::StatusOr<ObjectStateSnapshot> ObjectState(
      const kube::ResourceInfo& resource, const cache::ObjectKey& key,
      const nlohmann::json& body);
  void set_api_server(std::string s) { api_server_ = std::move(s); }

  // Before /metrics is rendered: sets the gauges of what is read rather than
  // counted. The caches' sizes are read here; the loop-owned ones (streams,
  // free credits, workqueue depth) are set by a task posted to the loop,
  // which this waits for at most `wait` (the loop never waits for a scrape;
  // a late answer leaves the previous values). Not on the loop.
  void CollectMetrics(absl::Duration wait);

 private:
  // Children of the metrics families, looked up once per resource and
  // handler (loop-owned), so that counting an event takes no lock.
  struct ResourceMetrics {
    // By result: success, error, requeue, requeue_after.
    std::map<std::string, metrics::Counter*, std::less<>> reconciles;
    metrics::Counter* errors = nullptr;
    metrics::Histogram* reconcile_time = nullptr;
    metrics::Counter* adds = nullptr;
    metrics::Histogram* queue_duration = nullptr;
  };
  struct HandlerMetrics {
    std::map<Cause, metrics::Counter*> deliveries;
    metrics::Histogram* duration = nullptr;
  };
  static Options WithMetrics(Options options,
                             metrics::HeraldMetrics* own_metrics);
  // On the loop: the dispatcher's queueing and its events, counted.
  void CountQueued(const Delivery& delivery);
  void CountDispatch(const DispatchEvent& event);
  ResourceMetrics& MetricsOf(const std::string& resource);
  HandlerMetrics& MetricsOfHandler(const std::string& resource,
                                   const std::string& handler_id);
  // On the loop: the gauges CollectMetrics asks for.
  void SetLoopGauges();

  // Ready(), on the loop.
  bool ReadyOnLoop();
  class Tee;
  // Runs `fn` on the loop, waits, and returns what it returned; Unavailable
  // when the loop has stopped.
  template <typename T>
  absl::StatusOr<T> Query(std::function<T()> fn);
  // The watches, copied under `watches_mu_`, which is not held afterwards:
  // each watch lives as long as the engine.
  std::vector<kube::ResourceWatch*> WatchList();
  // The same for inspection: Unavailable once the sidecar is stopping.
  absl::StatusOr<std::vector<kube::ResourceWatch*>> InspectedWatchList();
  // On the loop: logs a message from a stream the engine does not serve.
  void NotRegistered(StreamId stream, const char* what, DeliveryId delivery);
  // On the loop: watches `resource` (resolved), or `name` (not resolved yet:
  // the watch waits for it), unless watched already or stopping.
  void StartWatch(const kube::ResourceInfo& resource);
  void StartWatchByName(const std::string& name);
  // Runs `fn` on a registration thread of its own (it may talk to the API
  // server). False when stopping. Not on the loop.
  bool Spawn(std::function<void()> fn);
  // Resolves and registers a registration's specs off the loop; `sink`
  // null for none (and `stream` 0).
  void Resolve(StreamId stream, Registration request, const std::string& peer,
               const std::shared_ptr<StreamSink>& sink);
  // Runs `fn` on the loop and waits for it. False, without waiting, when the
  // loop has stopped (or stops before running `fn`). Not on the loop.
  bool RunOnLoop(std::function<void()> fn);
  // Off the loop: keeps resolving the resource names of pending handlers
  // until each resolves or the engine stops.
  void ResolvePending();
  // On the loop: the pending handlers of `name` now serve `resource`.
  void ActivatePending(const std::string& name,
                       const kube::ResourceInfo& resource);

  kube::ApiClient* api_;
  kube::Discovery* discovery_;
  // Set when Options::metrics is null; before `options_`, which points at it.
  std::unique_ptr<metrics::HeraldMetrics> own_metrics_;
  const Options options_;
  metrics::HeraldMetrics* const metrics_ = options_.metrics;
  // Loop-owned: by resource full name, and by resource and handler id.
  std::map<std::string, ResourceMetrics, std::less<>> resource_metrics_;
  std::map<std::pair<std::string, std::string>, HandlerMetrics>
      handler_metrics_;
  runtime::EventLoop loop_{options_.clock};
  std::thread loop_thread_;
  // Loop-owned, as the dispatcher and processor are. The registry is a plain
  // container with no loop of its own: its callers, the engine's loop-only
  // methods and the processor, check the thread.
  Registry registry_;
  Dispatcher dispatcher_{&loop_};
  std::unique_ptr<ApiObjectWriter> writer_;
  std::unique_ptr<Processor> processor_;
  std::unique_ptr<Tee> tee_;
  std::atomic<uint64_t> next_stream_{1};
  std::atomic<bool> stopping_flag_{false};
  const absl::Time started_ = loop_.clock()->Now();
  std::string api_server_;
  // Loop-owned: the sinks of registered streams.
  std::map<StreamId, std::shared_ptr<StreamSink>> sinks_;
  // Loop-owned: startup, cleanup and probe handlers.
  std::unique_ptr<Activities> activities_;
  // Leader election. Loop-owned: the role; a standby's startup handlers,
  // run by Lead. `feeding_`: the processor takes watch events (read by the
  // watch threads); `delivering_`: deliveries may go out (read by the
  // dispatcher's gate and Drain).
  enum class Role { kLeading, kStandby, kStarting };
  Role role_ = options_.standby ? Role::kStandby : Role::kLeading;
  std::vector<std::string> deferred_startup_;
  std::atomic<bool> feeding_{!options_.standby};
  std::atomic<bool> delivering_{!options_.standby};
  std::map<uint64_t, std::function<void(const DispatchEvent&)>> subscribers_;
  uint64_t next_subscriber_ = 1;

  absl::Mutex probe_mu_;
  absl::Time probe_at_ ABSL_GUARDED_BY(probe_mu_) = absl::InfinitePast();
  ProbeResult probe_ ABSL_GUARDED_BY(probe_mu_);

  // The watches, changed on the loop only, and read by inspection from any
  // thread: the mutex is held to change or copy the list, never while
  // calling into a watch. Stop moves them to `stopped_watches_` (on the
  // loop) before stopping them (off it), and closes the list.
  absl::Mutex watches_mu_;
  std::vector<std::unique_ptr<kube::ResourceWatch>> watches_
      ABSL_GUARDED_BY(watches_mu_);
  bool watches_closed_ ABSL_GUARDED_BY(watches_mu_) = false;
  // Loop-owned: the names the watches were asked for.
  std::vector<std::string> watched_names_;
  bool loop_stopping_ = false;
  // Stop's own, once it has taken them from the loop.
  std::vector<std::unique_ptr<kube::ResourceWatch>> stopped_watches_;

  // Guards the registration threads' bookkeeping only: held for no I/O and
  // no join, and never taken on the loop.
  absl::Mutex registrations_mu_;
  // Registration threads, with a flag each sets when it is done; finished
  // ones are joined at the next registration.
  struct RegistrationThread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<RegistrationThread> registrations_
      ABSL_GUARDED_BY(registrations_mu_);
  bool stopping_ ABSL_GUARDED_BY(registrations_mu_) = false;

  // Resource names of pending handlers, resolved again and again by
  // `pending_thread_` (started with the first pending handler). The mutex
  // is held for no I/O and no join: the loop may take it briefly.
  absl::Mutex pending_mu_;
  std::set<std::string> pending_names_ ABSL_GUARDED_BY(pending_mu_);
  bool pending_stop_ ABSL_GUARDED_BY(pending_mu_) = false;
  absl::Notification pending_stopped_;
  std::thread pending_thread_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_ENGINE_H_
