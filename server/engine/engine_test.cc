#include "server/engine/engine.h"

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/engine/test_resources.h"
#include "server/session/wire.h"

namespace herald::engine {
namespace {

constexpr char kApis[] = R"({"kind":"APIGroupList","groups":[
 {"name":"kopf.dev","versions":[{"groupVersion":"kopf.dev/v1","version":"v1"}],"preferredVersion":{"groupVersion":"kopf.dev/v1","version":"v1"}}]})";
constexpr char kKopfV1[] = R"({"kind":"APIResourceList","resources":[
 {"name":"kopfexamples","singularName":"kopfexample","namespaced":true,"kind":"KopfExample","verbs":["list","watch","patch"],"shortNames":["kex"]},
 {"name":"kopfexamples/status","namespaced":true,"kind":"KopfExample","verbs":["get","patch"]}]})";

// An API server that answers discovery, and whose requests can be held: a
// held request does not return, cancelled or not, until released (as a
// request stuck on a slow server or a dead connection).
class GateHttpClient : public kube::HttpClient {
 public:
  // Holds requests (unary ones and streams) whose target starts with
  // `prefix`.
  void Hold(const std::string& prefix) {
    absl::MutexLock lock(&mu_);
    held_prefix_ = prefix;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }
  // Notified when a held request has started, and when one was cancelled.
  absl::Notification holding;
  absl::Notification cancel_asked;

  absl::StatusOr<kube::HttpResponse> Send(
      const kube::HttpRequest& request) override {
    WaitIfHeld(request.target);
    if (request.target == "/api") {
      return kube::HttpResponse{200, R"({"kind":"APIVersions","versions":[]})",
                                ""};
    }
    if (request.target == "/api/v1") {
      return kube::HttpResponse{
          200, R"({"kind":"APIResourceList","resources":[]})", ""};
    }
    if (request.target == "/apis") return kube::HttpResponse{200, kApis, ""};
    if (request.target == "/apis/kopf.dev/v1") {
      return kube::HttpResponse{200, kKopfV1, ""};
    }
    return kube::HttpResponse{404, R"({"kind":"Status","message":"no"})", ""};
  }

  absl::StatusOr<kube::HttpResponse> Stream(
      const kube::HttpRequest& request, absl::Duration idle_timeout,
      const kube::DataCallback& on_data,
      kube::StreamCanceller* canceller) override {
    canceller->SetOnCancel([this] {
      if (!cancel_asked.HasBeenNotified()) cancel_asked.Notify();
    });
    if (canceller->cancelled()) return absl::CancelledError("cancelled");
    if (WaitIfHeld(request.target)) {
      return absl::CancelledError("cancelled");
    }
    // Not held: a stream that ends at once, as an unreachable server.
    return absl::UnavailableError("nothing here");
  }

 private:
  // True when the request was held (and is now released).
  bool WaitIfHeld(const std::string& target) {
    absl::MutexLock lock(&mu_);
    if (held_prefix_.empty() || target.rfind(held_prefix_, 0) != 0) {
      return false;
    }
    if (!holding.HasBeenNotified()) holding.Notify();
    mu_.Await(absl::Condition(&released_));
    return true;
  }

  absl::Mutex mu_;
  std::string held_prefix_ ABSL_GUARDED_BY(mu_);
  bool released_ ABSL_GUARDED_BY(mu_) = false;
};

// A handler process's stream, as the process would read it.
class Sink : public session::WireSink {
 public:
  explicit Sink(StreamId stream) : WireSink(stream, 16 << 20, "test") {}
  void Write(v1::ConnectResponse m) override {
    absl::MutexLock lock(&mu_);
    messages_.push_back(m);
  }
  std::vector<v1::ConnectResponse> messages() {
    absl::MutexLock lock(&mu_);
    return messages_;
  }
  // True once `n` messages were sent, within `timeout`.
  bool AwaitMessages(size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return messages_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::ConnectResponse> messages_ ABSL_GUARDED_BY(mu_);
};

struct Fixture {
  explicit Fixture(Engine::Options options = Engine::Options()) {
    auto h = std::make_unique<GateHttpClient>();
    http = h.get();
    api = std::make_unique<kube::ApiClient>(std::move(h));
    discovery = std::make_unique<kube::Discovery>(api.get());
    engine = std::make_unique<Engine>(api.get(), discovery.get(), options);
  }
  GateHttpClient* http;
  std::unique_ptr<kube::ApiClient> api;
  std::unique_ptr<kube::Discovery> discovery;
  std::unique_ptr<Engine> engine;
};

// True when `engine` answers a query on its loop within a few seconds: the
// loop is not blocked. (A query left waiting returns when the engine stops,
// which releases what its loop holds.)
bool LoopAnswers(Engine* engine) {
  auto answered = std::make_shared<absl::Notification>();
  std::thread([engine, answered] {
    if (engine->Processes().ok()) answered->Notify();
  }).detach();
  return answered->WaitForNotificationWithTimeout(absl::Seconds(5));
}

// Stop waits for a watcher whose request does not end at once. Meanwhile the
// loop takes no lock Stop holds: it keeps answering.
TEST(EngineTest, LoopKeepsServingWhileStopWaitsForAWatcher) {
  Fixture f;
  f.http->Hold("/apis/kopf.dev/v1/kopfexamples");
  f.engine->Start();
  f.engine->Watch("kopfexamples");
  ASSERT_TRUE(
      f.http->holding.WaitForNotificationWithTimeout(absl::Seconds(10)));
  std::thread stopper([&] { f.engine->Stop(); });
  ASSERT_TRUE(
      f.http->cancel_asked.WaitForNotificationWithTimeout(absl::Seconds(10)));
  // Stop is waiting for the watcher's thread now.
  EXPECT_TRUE(LoopAnswers(f.engine.get()));
  f.http->Release();
  stopper.join();
}

// A registration thread stuck in an API call (discovery) blocks neither the
// loop nor, beyond that call, Stop.
TEST(EngineTest, LoopKeepsServingWhileARegistrationIsInAnApiCall) {
  Fixture f;
  f.http->Hold("/apis");
  f.engine->Start();
  const StreamId stream = f.engine->NewStreamId();
  auto sink = std::make_shared<Sink>(stream);
  v1::Register request;
  request.set_credits(1);
  v1::HandlerSpec* spec = request.add_handlers();
  spec->set_id("create_fn");
  spec->set_resource("kopfexamples");
  spec->set_cause(v1::CAUSE_CREATE);
  ASSERT_TRUE(f.engine
                  ->Register(stream, session::RegistrationFromWire(request),
                             "peer", sink)
                  .ok());
  ASSERT_TRUE(
      f.http->holding.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(LoopAnswers(f.engine.get()));
  absl::Notification stopped;
  std::thread stopper([&] {
    f.engine->Stop();
    stopped.Notify();
  });
  EXPECT_TRUE(LoopAnswers(f.engine.get()));
  EXPECT_FALSE(stopped.HasBeenNotified());  // Waits for the registration.
  f.http->Release();
  EXPECT_TRUE(stopped.WaitForNotificationWithTimeout(absl::Seconds(10)));
  stopper.join();
}

// Drain waits on the loop's word, not on a timer: it returns once the
// cleanup handler has answered, long before its stop-wait.
TEST(EngineTest, DrainReturnsWhenTheCleanupHandlerAnswers) {
  Fixture f;
  f.engine->Start();
  const StreamId stream = f.engine->NewStreamId();
  auto sink = std::make_shared<Sink>(stream);
  v1::Register request;
  request.set_credits(1);
  auto* spec = request.add_handlers();
  spec->set_id("cleanup_fn");
  spec->set_cause(v1::CAUSE_CLEANUP);
  ASSERT_TRUE(f.engine
                  ->Register(stream, session::RegistrationFromWire(request),
                             "peer", sink)
                  .ok());
  ASSERT_TRUE(sink->AwaitMessages(1, absl::Seconds(10)));
  ASSERT_TRUE(sink->messages()[0].has_registered());
  absl::Notification drained;
  std::thread drainer([&] {
    f.engine->Drain(absl::Seconds(60));
    drained.Notify();
  });
  ASSERT_TRUE(sink->AwaitMessages(2, absl::Seconds(10)));
  const v1::ConnectResponse cleanup = sink->messages()[1];
  ASSERT_TRUE(cleanup.has_delivery());
  EXPECT_EQ(cleanup.delivery().cause(), v1::CAUSE_CLEANUP);
  EXPECT_FALSE(drained.HasBeenNotified());  // Waits for the outcome.
  v1::Outcome outcome;
  outcome.set_delivery_id(cleanup.delivery().delivery_id());
  outcome.set_status(v1::OUTCOME_STATUS_SUCCESS);
  f.engine->OnOutcome(
      stream, session::OutcomeFromWire(
                  outcome, *session::ParseDeliveryId(outcome.delivery_id())));
  EXPECT_TRUE(drained.WaitForNotificationWithTimeout(absl::Seconds(10)));
  drainer.join();
}

// A delivery and its answer are counted where the engine keeps them; the
// gauges of loop-owned state are set when a scrape collects. A cleanup
// handler is about no object: a delivery and a duration, no reconcile.
TEST(EngineTest, CountsDeliveriesAndCollectsGauges) {
  auto h = std::make_unique<GateHttpClient>();
  kube::ApiClient api(std::move(h));
  kube::Discovery discovery(&api);
  metrics::HeraldMetrics m;
  Engine::Options options;
  options.metrics = &m;
  Engine engine(&api, &discovery, options);
  engine.Start();
  const StreamId stream = engine.NewStreamId();
  auto sink = std::make_shared<Sink>(stream);
  v1::Register request;
  request.set_credits(3);
  auto* spec = request.add_handlers();
  spec->set_id("cleanup_fn");
  spec->set_cause(v1::CAUSE_CLEANUP);
  ASSERT_TRUE(engine
                  .Register(stream, session::RegistrationFromWire(request),
                            "peer", sink)
                  .ok());
  ASSERT_TRUE(sink->AwaitMessages(1, absl::Seconds(10)));
  engine.CollectMetrics(absl::Seconds(10));
  EXPECT_EQ(m.handler_streams->Find({})->Value(), 1);
  EXPECT_EQ(m.credits_available->Find({})->Value(), 3);

  std::thread drainer([&] { engine.Drain(absl::Seconds(60)); });
  ASSERT_TRUE(sink->AwaitMessages(2, absl::Seconds(10)));
  engine.CollectMetrics(absl::Seconds(10));
  EXPECT_EQ(m.credits_available->Find({})->Value(), 2);  // One in flight.
  const metrics::Counter* delivered =
      m.deliveries_total->Find({"", "cleanup_fn", "cleanup"});
  ASSERT_NE(delivered, nullptr);
  EXPECT_EQ(delivered->Value(), 1);

  v1::Outcome outcome;
  outcome.set_delivery_id(sink->messages()[1].delivery().delivery_id());
  outcome.set_status(v1::OUTCOME_STATUS_SUCCESS);
  engine.OnOutcome(
      stream, session::OutcomeFromWire(
                  outcome, *session::ParseDeliveryId(outcome.delivery_id())));
  drainer.join();
  engine.CollectMetrics(absl::Seconds(10));
  EXPECT_EQ(m.credits_available->Find({})->Value(), 3);
  const metrics::Histogram* duration =
      m.handler_duration_seconds->Find({"cleanup_fn"});
  ASSERT_NE(duration, nullptr);
  EXPECT_EQ(duration->Read().count(), 1u);
  const std::string text = m.Render();
  EXPECT_EQ(text.find("controller_runtime_reconcile_total"), std::string::npos);
  EXPECT_EQ(text.find("workqueue_adds_total"), std::string::npos);
  engine.Disconnect(stream);
  engine.CollectMetrics(absl::Seconds(10));
  EXPECT_EQ(m.handler_streams->Find({})->Value(), 0);
  EXPECT_EQ(m.credits_available->Find({})->Value(), 0);
  engine.Stop();
  // After Stop, collecting returns (the loop is gone) and changes nothing.
  engine.CollectMetrics(absl::Seconds(10));
  EXPECT_EQ(m.handler_streams->Find({})->Value(), 0);
}

TEST(EngineTest, ReconcileResultOfEachAnswer) {
  Outcome o;
  o.status = OutcomeStatus::kSuccess;
  EXPECT_EQ(ReconcileResult(o), "success");
  o.status = OutcomeStatus::kSkipped;
  EXPECT_EQ(ReconcileResult(o), "success");
  o.status = OutcomeStatus::kTemporaryError;
  EXPECT_EQ(ReconcileResult(o), "requeue");
  o.delay = absl::Seconds(5);
  EXPECT_EQ(ReconcileResult(o), "requeue_after");
  o.status = OutcomeStatus::kPermanentError;
  EXPECT_EQ(ReconcileResult(o), "error");
  o.status = OutcomeStatus::kUnexpectedError;
  EXPECT_EQ(ReconcileResult(o), "error");
  o.status = OutcomeStatus::kSuccess;
  o.malformed = absl::InvalidArgumentError("result: not JSON");
  EXPECT_EQ(ReconcileResult(o), "error");
}

// Registers `handlers` (id, cause) on a new stream with 4 credits; the
// stream's sink once registered.
std::shared_ptr<Sink> RegisterActivities(
    Engine* engine, StreamId* stream,
    const std::vector<std::pair<std::string, v1::Cause>>& handlers) {
  *stream = engine->NewStreamId();
  auto sink = std::make_shared<Sink>(*stream);
  v1::Register request;
  request.set_credits(4);
  for (const auto& [id, cause] : handlers) {
    auto* spec = request.add_handlers();
    spec->set_id(id);
    spec->set_cause(cause);
  }
  EXPECT_TRUE(engine
                  ->Register(*stream, session::RegistrationFromWire(request),
                             "peer", sink)
                  .ok());
  EXPECT_TRUE(sink->AwaitMessages(1, absl::Seconds(10)));
  return sink;
}

void Answer(Engine* engine, StreamId stream, const v1::Delivery& d) {
  v1::Outcome outcome;
  outcome.set_delivery_id(d.delivery_id());
  outcome.set_status(v1::OUTCOME_STATUS_SUCCESS);
  engine->OnOutcome(stream,
                    session::OutcomeFromWire(
                        outcome, *session::ParseDeliveryId(d.delivery_id())));
}

// A standby delivers nothing but probes: its startup handlers run when it
// leads, and it runs no cleanup handler when it stops.
TEST(EngineTest, AStandbyDeliversOnlyProbesUntilItLeads) {
  std::atomic<bool> lease{true};
  Engine::Options options;
  options.standby = true;
  options.may_deliver = [&lease] { return lease.load(); };
  options.leadership = [&lease] {
    LeadershipSnapshot s;
    s.enabled = true;
    s.leading = lease.load();
    s.holder = "other";
    s.lease_name = "herald";
    return s;
  };
  Fixture f(options);
  f.engine->Start();
  StreamId stream = 0;
  auto sink = RegisterActivities(f.engine.get(), &stream,
                                 {{"startup_fn", v1::CAUSE_STARTUP},
                                  {"probe_fn", v1::CAUSE_PROBE},
                                  {"cleanup_fn", v1::CAUSE_CLEANUP}});
  EXPECT_FALSE(f.engine->Delivering());
  EXPECT_FALSE(f.engine->Leadership().leading);  // The lease, not the role.
  std::thread prober([&] { f.engine->Probe(absl::Seconds(10)); });
  ASSERT_TRUE(sink->AwaitMessages(2, absl::Seconds(10)));
  ASSERT_TRUE(sink->messages()[1].has_delivery());
  EXPECT_EQ(sink->messages()[1].delivery().cause(), v1::CAUSE_PROBE);
  Answer(f.engine.get(), stream, sink->messages()[1].delivery());
  prober.join();
  EXPECT_FALSE(sink->AwaitMessages(3, absl::Milliseconds(200)));

  f.engine->Lead();
  ASSERT_TRUE(sink->AwaitMessages(3, absl::Seconds(10)));
  EXPECT_EQ(sink->messages()[2].delivery().cause(), v1::CAUSE_STARTUP);
  EXPECT_TRUE(f.engine->Delivering());
  auto status = f.engine->Overview();
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(status->leadership.enabled);
  EXPECT_TRUE(status->leadership.leading);
  EXPECT_EQ(status->leadership.lease_name, "herald");
  Answer(f.engine.get(), stream, sink->messages()[2].delivery());

  // The lease lost: the cleanup handler is not delivered at shutdown.
  lease = false;
  EXPECT_FALSE(f.engine->Delivering());
  f.engine->Drain(absl::Seconds(10));
  EXPECT_FALSE(sink->AwaitMessages(4, absl::Milliseconds(200)));
}

TEST(EngineTest, ALeaderRunsItsCleanupHandlersAtShutdown) {
  Engine::Options options;
  options.standby = true;
  Fixture f(options);
  f.engine->Start();
  StreamId stream = 0;
  auto sink = RegisterActivities(f.engine.get(), &stream,
                                 {{"cleanup_fn", v1::CAUSE_CLEANUP}});
  f.engine->Lead();
  std::thread drainer([&] { f.engine->Drain(absl::Seconds(60)); });
  ASSERT_TRUE(sink->AwaitMessages(2, absl::Seconds(10)));
  EXPECT_EQ(sink->messages()[1].delivery().cause(), v1::CAUSE_CLEANUP);
  Answer(f.engine.get(), stream, sink->messages()[1].delivery());
  drainer.join();
}

// A spec the engine cannot read (a malformed duration) is rejected with the
// reason, as an invalid one is; the others in the request are accepted.
TEST(EngineTest, ASpecThatCannotBeReadIsRejectedWithTheReason) {
  Fixture f;
  f.engine->Start();
  const StreamId stream = f.engine->NewStreamId();
  auto sink = std::make_shared<Sink>(stream);
  v1::Register request;
  request.set_credits(1);
  v1::HandlerSpec* bad = request.add_handlers();
  bad->set_id("bad_fn");
  bad->set_cause(v1::CAUSE_CLEANUP);
  bad->mutable_timeout()->set_seconds(1);
  bad->mutable_timeout()->set_nanos(-5);
  v1::HandlerSpec* invalid = request.add_handlers();
  invalid->set_id("invalid_fn");
  invalid->set_cause(v1::CAUSE_UNSPECIFIED);
  v1::HandlerSpec* good = request.add_handlers();
  good->set_id("good_fn");
  good->set_cause(v1::CAUSE_CLEANUP);
  ASSERT_TRUE(f.engine
                  ->Register(stream, session::RegistrationFromWire(request),
                             "peer", sink)
                  .ok());
  ASSERT_TRUE(sink->AwaitMessages(1, absl::Seconds(10)));
  ASSERT_TRUE(sink->messages()[0].has_registered());
  const v1::Registered registered = sink->messages()[0].registered();
  ASSERT_EQ(registered.rejections_size(), 2);
  EXPECT_EQ(registered.rejections(0).handler_id(), "bad_fn");
  EXPECT_EQ(registered.rejections(0).reason(),
            "timeout: not a valid duration (seconds 1, nanos -5)");
  EXPECT_EQ(registered.rejections(1).handler_id(), "invalid_fn");
  EXPECT_EQ(registered.rejections(1).reason(), "resource is empty");
  ASSERT_EQ(registered.accepted_handler_ids_size(), 1);
  EXPECT_EQ(registered.accepted_handler_ids(0), "good_fn");
}

// After Stop, what waits for the loop returns instead of waiting forever.
TEST(EngineTest, CallsAfterStopReturn) {
  // Leaked if a call hangs: the test fails instead of hanging with it.
  auto* f = new Fixture();
  f->engine->Start();
  f->engine->Stop();
  auto done = std::make_shared<absl::Notification>();
  auto ready = std::make_shared<bool>(true);
  auto probe = std::make_shared<Engine::ProbeResult>();
  std::thread calls([f, done, ready, probe] {
    *ready = f->engine->Ready();
    *probe = f->engine->Probe(absl::Seconds(1));
    f->engine->Drain(absl::Seconds(1));
    done->Notify();
  });
  if (!done->WaitForNotificationWithTimeout(absl::Seconds(10))) {
    calls.detach();
    FAIL() << "a call after Stop is still waiting for the loop";
  }
  calls.join();
  EXPECT_FALSE(*ready);
  EXPECT_FALSE(probe->ok);
  delete f;
}

// Inspection after Stop answers Unavailable, from the loop or not.
TEST(EngineTest, QueriesAfterStopAreUnavailable) {
  Fixture f;
  f.engine->Start();
  f.engine->Stop();
  EXPECT_EQ(f.engine->Overview().status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(f.engine->Handlers().status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(f.engine->Processes().status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(f.engine->Queues().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(f.engine->Timers().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(f.engine->Daemons().status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(f.engine->Index("by_name").status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(f.engine
                ->ObjectState(kube::ResourceInfo(), {"ns", "name"},
                              nlohmann::json::object())
                .status()
                .code(),
            absl::StatusCode::kUnavailable);
  const auto resources = f.engine->Resources();
  EXPECT_EQ(resources.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(resources.status().message(), "the sidecar is stopping");
  EXPECT_EQ(f.engine->Caches().status().code(), absl::StatusCode::kUnavailable);
}

// A watch shows in Resources at once, and in Caches once its resource is
// resolved, while its listing is still under way.
TEST(EngineTest, ResourcesAndCachesShowAWatchBeingListed) {
  Fixture f;
  f.http->Hold("/apis/kopf.dev/v1/kopfexamples");
  f.engine->Start();
  EXPECT_TRUE(f.engine->Resources()->empty());
  EXPECT_TRUE(f.engine->Caches()->empty());
  f.engine->Watch("kex");
  ASSERT_TRUE(
      f.http->holding.WaitForNotificationWithTimeout(absl::Seconds(10)));
  const auto resources = f.engine->Resources();
  ASSERT_TRUE(resources.ok()) << resources.status();
  ASSERT_EQ(resources->size(), 1u);
  const ResourceSnapshot& r = (*resources)[0];
  EXPECT_EQ(r.name, "kopfexamples.v1.kopf.dev");
  EXPECT_EQ(r.state, kube::ResourceWatch::State::kWatching);
  EXPECT_EQ(r.resource.kind, "KopfExample");
  EXPECT_FALSE(r.synced);
  EXPECT_EQ(r.object_count, 0u);
  EXPECT_EQ(r.last_event, absl::InfinitePast());
  const auto caches = f.engine->Caches();
  ASSERT_TRUE(caches.ok()) << caches.status();
  ASSERT_EQ(caches->size(), 1u);
  EXPECT_EQ((*caches)[0].resource.plural, "kopfexamples");
  ASSERT_NE((*caches)[0].store, nullptr);
  EXPECT_EQ((*caches)[0].store->size(), 0u);
  const auto status = f.engine->Overview();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_FALSE(status->ready);  // Not listed yet.
  EXPECT_EQ(status->version, "0.1.0");
  EXPECT_EQ(f.engine->Index("by_name").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(f.engine->Index("by_name").status().message(),
            "no index named 'by_name'");
  f.http->Release();
  f.engine->Stop();
}

}  // namespace
}  // namespace herald::engine
