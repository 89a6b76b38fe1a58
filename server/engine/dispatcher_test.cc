#include "server/engine/dispatcher.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/runtime/clock.h"
#include "server/runtime/event_loop.h"

namespace herald::engine {
namespace {

using ::testing::ElementsAre;

class Sink : public StreamSink {
 public:
  void Registered(const RegistrationAnswer&) override {}
  void Deliver(const Delivery& d) override { sent.push_back(d.id); }
  void Stop(DeliveryId, StopReason, bool) override {}
  void Error(StreamError, DeliveryId, const std::string&) override {}
  std::vector<DeliveryId> sent;
};

StreamInfo Info(StreamId id, uint32_t credits,
                std::vector<std::string> handlers) {
  StreamInfo i;
  i.stream = id;
  i.credits = credits;
  i.handler_ids = std::move(handlers);
  return i;
}

Delivery D(DeliveryId id, const std::string& handler = "h") {
  Delivery d;
  d.id = id;
  d.handler_id = handler;
  return d;
}

absl::Status Ok(const Outcome&, StreamId) { return absl::OkStatus(); }

bool InFlightOn(const Dispatcher& d, StreamId stream, DeliveryId delivery) {
  return d.InFlight(stream, delivery) != nullptr;
}

Outcome O(DeliveryId id) {
  Outcome o;
  o.delivery_id = id;
  o.status = OutcomeStatus::kSuccess;
  return o;
}

// The dispatcher of a loop this thread drives (as the engine's loop thread
// does), on a clock the test moves.
class DispatcherTest : public ::testing::Test {
 protected:
  runtime::FakeClock clock_;
  runtime::EventLoop loop_{&clock_};
  Dispatcher d{&loop_};
};

TEST_F(DispatcherTest, AClosedGateHoldsDeliveriesUntilResumed) {
  Sink s;
  d.AddStream(Info(1, 4, {"h", "probe"}), &s);
  bool leading = false;
  d.set_gate(
      [&](const Delivery& x) { return leading || x.cause == Cause::kProbe; });
  d.Submit(D(1), Ok);
  Delivery probe = D(2, "probe");
  probe.cause = Cause::kProbe;
  d.Submit(probe, Ok);
  d.Submit(D(3), Ok);
  EXPECT_THAT(s.sent, ElementsAre(2));  // Probes pass; the rest waits.
  EXPECT_EQ(d.queued(), 2u);
  d.Resume();
  EXPECT_THAT(s.sent, ElementsAre(2));
  leading = true;
  d.Resume();
  EXPECT_THAT(s.sent, ElementsAre(2, 1, 3));
  // Closed again (the lease lost): what comes next stays queued.
  leading = false;
  d.Submit(D(4), Ok);
  EXPECT_THAT(s.sent, ElementsAre(2, 1, 3));
}

TEST_F(DispatcherTest, NeverExceedsCreditsAndQueuesTheRest) {
  Sink s;
  d.AddStream(Info(1, 2, {"h"}), &s);
  std::vector<DeliveryId> done;
  for (DeliveryId id : {1, 2, 3}) {
    d.Submit(D(id), [&, id](const Outcome&, StreamId) {
      done.push_back(id);
      return absl::OkStatus();
    });
  }
  EXPECT_THAT(s.sent, ElementsAre(1, 2));
  EXPECT_EQ(d.queued(), 1u);
  StreamError code;
  ASSERT_TRUE(d.OnOutcome(1, O(1), &code).ok());
  EXPECT_THAT(done, ElementsAre(1));
  EXPECT_THAT(s.sent, ElementsAre(1, 2, 3));
  EXPECT_EQ(d.queued(), 0u);
}

TEST_F(DispatcherTest, WorkWaitsForAProcessServingItsHandler) {
  Sink other;
  d.AddStream(Info(0, 5, {"other"}), &other);
  d.Submit(D(1), Ok);
  EXPECT_TRUE(other.sent.empty());
  EXPECT_EQ(d.queued_for("h"), 1u);
  Sink s;
  d.AddStream(Info(1, 1, {"h"}), &s);
  EXPECT_THAT(s.sent, ElementsAre(1));
}

TEST_F(DispatcherTest, LoadIsSharedAcrossProcesses) {
  Sink a, b;
  d.AddStream(Info(11, 10, {"h"}), &a);
  d.AddStream(Info(12, 10, {"h"}), &b);
  for (int i = 0; i < 10; ++i) {
    d.Submit(D(static_cast<DeliveryId>(i + 1)), Ok);
  }
  EXPECT_EQ(a.sent.size(), 5u);
  EXPECT_EQ(b.sent.size(), 5u);
}

TEST_F(DispatcherTest, AnEndedStreamsDeliveriesGoElsewhereAtOnce) {
  Sink a;
  d.AddStream(Info(11, 2, {"h"}), &a);
  d.Submit(D(1), Ok);
  d.Submit(D(2), Ok);
  d.Submit(D(3), Ok);
  Sink b;
  d.AddStream(Info(12, 1, {"h"}), &b);
  EXPECT_THAT(b.sent, ElementsAre(3));
  StreamError code;
  ASSERT_TRUE(d.OnOutcome(12, O(3), &code).ok());
  d.RemoveStream(11);
  // d1 first: requeued deliveries keep their order at the front.
  EXPECT_THAT(b.sent, ElementsAre(3, 1));
  ASSERT_TRUE(d.OnOutcome(12, O(1), &code).ok());
  EXPECT_THAT(b.sent, ElementsAre(3, 1, 2));
  // The removed stream can no longer answer.
  EXPECT_FALSE(d.OnOutcome(11, O(2), &code).ok());
}

TEST_F(DispatcherTest, RequeueFollowsDeliveryOrderPastTenInFlight) {
  Sink a;
  d.AddStream(Info(11, 12, {"h"}), &a);
  std::vector<DeliveryId> ids;
  for (int i = 1; i <= 12; ++i) {
    ids.push_back(static_cast<DeliveryId>(i));
    d.Submit(D(ids.back()), Ok);
  }
  ASSERT_EQ(a.sent, ids);
  ASSERT_EQ(d.Streams().size(), 1u);
  EXPECT_EQ(d.Streams()[0].in_flight, ids);  // 9 before 10.
  d.RemoveStream(11);
  Sink b;
  d.AddStream(Info(12, 12, {"h"}), &b);
  EXPECT_EQ(b.sent, ids);
  // Answered on their new stream; the old one knows them no more.
  StreamError code;
  EXPECT_TRUE(InFlightOn(d, 12, 10));
  EXPECT_FALSE(InFlightOn(d, 11, 10));
  ASSERT_TRUE(d.OnOutcome(12, O(10), &code).ok());
  EXPECT_FALSE(InFlightOn(d, 12, 10));
  EXPECT_FALSE(d.OnOutcome(12, O(10), &code).ok());
  EXPECT_EQ(code, StreamError::kDuplicateOutcome);
}

TEST_F(DispatcherTest, UnknownAndDuplicateOutcomesAreErrorsThatChangeNothing) {
  Sink s;
  d.AddStream(Info(3, 1, {"h"}), &s);
  int calls = 0;
  d.Submit(D(1), [&](const Outcome&, StreamId) {
    ++calls;
    return absl::OkStatus();
  });
  StreamError code = StreamError::kNotRegistered;
  EXPECT_FALSE(d.OnOutcome(3, O(999), &code).ok());
  EXPECT_EQ(code, StreamError::kUnknownDelivery);
  EXPECT_TRUE(InFlightOn(d, 3, 1));
  ASSERT_TRUE(d.OnOutcome(3, O(1), &code).ok());
  EXPECT_FALSE(d.OnOutcome(3, O(1), &code).ok());
  EXPECT_EQ(code, StreamError::kDuplicateOutcome);
  EXPECT_EQ(calls, 1);
  // A callback's error comes back as MALFORMED_JSON.
  d.Submit(D(2), [](const Outcome&, StreamId) {
    return absl::InvalidArgumentError("patch_json is not JSON");
  });
  EXPECT_EQ(d.OnOutcome(3, O(2), &code).message(), "patch_json is not JSON");
  EXPECT_EQ(code, StreamError::kMalformedJson);
}

TEST_F(DispatcherTest, CreditsCanGrowAndMustStayPositive) {
  Sink s;
  d.AddStream(Info(3, 1, {"h"}), &s);
  for (DeliveryId id : {1, 2, 3}) d.Submit(D(id), Ok);
  EXPECT_EQ(s.sent.size(), 1u);
  ASSERT_TRUE(d.SetCredits(3, 3).ok());
  EXPECT_EQ(s.sent.size(), 3u);
  EXPECT_FALSE(d.SetCredits(3, 0).ok());
}

TEST_F(DispatcherTest, LongRunningDeliveriesTakeNoCredit) {
  Sink s;
  d.AddStream(Info(1, 1, {"daemon", "h"}), &s);
  d.SubmitLongRunning(D(101, "daemon"), Ok, [](Delivery*) { return true; });
  d.SubmitLongRunning(D(102, "daemon"), Ok, [](Delivery*) { return true; });
  d.Submit(D(1), Ok);
  // Both daemons run and the ordinary delivery still has its credit.
  EXPECT_THAT(s.sent, ElementsAre(101, 102, 1));
  EXPECT_EQ(d.StreamOf(102), 1);
  ASSERT_NE(d.InFlight(1, 101), nullptr);
  EXPECT_EQ(d.InFlight(2, 101), nullptr);
}

TEST_F(DispatcherTest, LongRunningDeliveriesSpreadOverProcesses) {
  Sink a, b;
  d.AddStream(Info(11, 1, {"daemon"}), &a);
  d.AddStream(Info(12, 1, {"daemon"}), &b);
  for (DeliveryId id : {101, 102, 103, 104}) {
    d.SubmitLongRunning(D(id, "daemon"), Ok, [](Delivery*) { return true; });
  }
  EXPECT_EQ(a.sent.size(), 2u);
  EXPECT_EQ(b.sent.size(), 2u);
}

TEST_F(DispatcherTest, RequeueAsksTheOwner) {
  Sink a, b;
  d.AddStream(Info(11, 4, {"daemon"}), &a);
  int asked = 0;
  d.SubmitLongRunning(D(201, "daemon"), Ok, [&](Delivery* del) {
    del->restarted = true;
    ++asked;
    return true;
  });
  d.SubmitLongRunning(D(202, "daemon"), Ok, [&](Delivery*) {
    ++asked;
    return false;
  });
  d.RemoveStream(11);
  EXPECT_EQ(asked, 2);
  d.AddStream(Info(12, 4, {"daemon"}), &b);
  EXPECT_THAT(b.sent, ElementsAre(201));
  EXPECT_EQ(d.StreamOf(202), 0u);
}

TEST_F(DispatcherTest, CancelForgetsAndFreesTheCredit) {
  Sink s;
  d.AddStream(Info(1, 1, {"h"}), &s);
  bool called = false;
  d.Submit(D(1), [&](const Outcome&, StreamId) {
    called = true;
    return absl::OkStatus();
  });
  d.Submit(D(2), Ok);
  EXPECT_THAT(s.sent, ElementsAre(1));
  EXPECT_TRUE(d.Cancel(1));
  EXPECT_THAT(s.sent, ElementsAre(1, 2));
  StreamError code = StreamError::kNotRegistered;
  EXPECT_FALSE(d.OnOutcome(1, O(1), &code).ok());
  EXPECT_EQ(code, StreamError::kUnknownDelivery);
  EXPECT_FALSE(called);
  EXPECT_FALSE(d.Cancel(999));
}

TEST_F(DispatcherTest, ObserverSeesDeliveriesOutcomesAndLatency) {
  Sink s;
  std::vector<std::string> seen;
  d.set_observer([&](const DispatchEvent& e) {
    const char* k = e.kind == DispatchEvent::Kind::kDelivery  ? "delivery"
                    : e.kind == DispatchEvent::Kind::kOutcome ? "outcome"
                                                              : "requeue";
    seen.push_back(absl::StrCat(k, ":d", e.delivery->id, "@s", e.stream));
    EXPECT_EQ(e.at, clock_.Now());  // On the loop's clock.
  });
  d.AddStream(Info(1, 2, {"h"}), &s);
  d.Submit(D(1), Ok);
  d.Submit(D(2), Ok);
  clock_.Advance(absl::Milliseconds(5));
  StreamError code;
  ASSERT_TRUE(d.OnOutcome(1, O(1), &code).ok());
  d.RemoveStream(1);
  EXPECT_THAT(seen, ElementsAre("delivery:d1@s1", "delivery:d2@s1",
                                "outcome:d1@s1", "requeue:d2@s1"));
  ASSERT_EQ(d.latencies().count("h"), 1u);
  EXPECT_EQ(d.latencies().at("h").count(), 1u);
  // Measured on the loop's clock: the 5 ms it moved, within the
  // histogram's 10%.
  EXPECT_NEAR(absl::ToDoubleMilliseconds(d.latencies().at("h").Quantile(1)),
              5.0, 0.5);
}

// The loop's contract, enforced: the thread that runs the loop may call the
// dispatcher (between runs too, as this test's body does), and so may a task
// another thread posts; another thread calling it directly aborts, naming
// the function.
TEST(DispatcherDeathTest, EntryPointsOffTheLoopThreadAbort) {
  runtime::FakeClock clock;
  runtime::EventLoop loop(&clock);
  Dispatcher d(&loop);
  Sink s;
  loop.RunUntilIdle();  // This thread runs the loop.
  d.AddStream(Info(1, 1, {"h"}), &s);
  std::thread poster([&] { loop.Post([&] { d.Submit(D(1), Ok); }); });
  poster.join();
  loop.RunUntilIdle();
  EXPECT_THAT(s.sent, ElementsAre(1));
  EXPECT_DEATH(
      {
        std::thread foreign([&] { d.Submit(D(2), Ok); });
        foreign.join();
      },
      "Dispatcher::Submit.*called off its event loop's thread");
  EXPECT_DEATH(
      {
        std::thread foreign([&] {
          StreamError code;
          (void)d.OnOutcome(1, O(1), &code);
        });
        foreign.join();
      },
      "Dispatcher::OnOutcome.*called off its event loop's thread");
  // Nothing changed here: the calls died in the children.
  EXPECT_EQ(d.queued(), 0u);
  EXPECT_THAT(s.sent, ElementsAre(1));
}

// A thousand deliveries waiting for eight credits: each submission and each
// outcome looks at a constant number of queue entries, not at everything
// that waits (which would be about n * n / 2 = 500,000 here).
TEST_F(DispatcherTest, WaitingDeliveriesCostConstantWorkPerEvent) {
  constexpr int kN = 1000;
  Sink s;
  d.AddStream(Info(1, 8, {"h"}), &s);
  int done = 0;
  for (int i = 0; i < kN; ++i) {
    d.Submit(D(static_cast<DeliveryId>(i + 1)), [&](const Outcome&, StreamId) {
      ++done;
      return absl::OkStatus();
    });
  }
  ASSERT_EQ(s.sent.size(), 8u);
  EXPECT_EQ(d.queued(), static_cast<size_t>(kN - 8));
  // Answered oldest first, as a process holding eight would.
  StreamError code;
  for (size_t answered = 0; answered < s.sent.size(); ++answered) {
    ASSERT_TRUE(d.OnOutcome(1, O(s.sent[answered]), &code).ok());
  }
  EXPECT_EQ(done, kN);
  EXPECT_EQ(d.queued(), 0u);
  ASSERT_EQ(s.sent.size(), static_cast<size_t>(kN));
  for (int i = 0; i < kN; ++i) EXPECT_EQ(s.sent[i], DeliveryId(i + 1));
  // Each entry is looked at once when sent; each of the 2 x kN events
  // finds at most one entry waiting at the front.
  EXPECT_LE(d.queue_steps(), static_cast<uint64_t>(3 * kN));
}

// Cancelling queued deliveries does not search the queue for each one.
TEST_F(DispatcherTest, CancellingWaitingDeliveriesCostsConstantWorkEach) {
  constexpr int kN = 1000;
  Sink s;
  d.AddStream(Info(1, 1, {"h"}), &s);
  for (int i = 0; i < kN; ++i) d.Submit(D(DeliveryId(i + 1)), Ok);
  ASSERT_THAT(s.sent, ElementsAre(1));
  // The newest first: the most entries stand before each one.
  for (int i = kN - 1; i >= 1; i -= 2) {
    ASSERT_TRUE(d.Cancel(DeliveryId(i + 1)));
  }
  EXPECT_EQ(d.queued(), static_cast<size_t>(kN / 2 - 1));
  EXPECT_EQ(d.queued_for("h"), static_cast<size_t>(kN / 2 - 1));
  // Cancelled ones are never sent; the rest go in order.
  StreamError code;
  for (size_t answered = 0; answered < s.sent.size(); ++answered) {
    ASSERT_TRUE(d.OnOutcome(1, O(s.sent[answered]), &code).ok());
  }
  ASSERT_EQ(s.sent.size(), static_cast<size_t>(kN / 2));
  for (int i = 0; i < kN / 2; ++i) {
    EXPECT_EQ(s.sent[i], DeliveryId(2 * i + 1));
  }
  EXPECT_EQ(d.queued(), 0u);
  // Every entry, live or cancelled, is looked at once when it leaves the
  // queue, plus one waiting entry per event (kN submissions, kN / 2
  // cancellations, kN / 2 outcomes).
  EXPECT_LE(d.queue_steps(), static_cast<uint64_t>(3 * kN));
}

// Deliveries cancelled behind one that waits (no process serves their
// handler yet) do not pile up in the queue, and cost constant work each.
TEST_F(DispatcherTest, CancelledEntriesBehindAWaitingOneDoNotPileUp) {
  constexpr int kN = 10000;
  d.Submit(D(kN + 1), Ok);
  for (int i = 0; i < kN; ++i) {
    const DeliveryId id = i + 1;
    d.Submit(D(id), Ok);
    ASSERT_TRUE(d.Cancel(id));
    ASSERT_LE(d.queue_entries(), 2u + 64u + 1u);
  }
  EXPECT_EQ(d.queued(), 1u);
  EXPECT_LE(d.queue_steps(), static_cast<uint64_t>(4 * kN));
  // The one that waited still goes first.
  Sink s;
  d.AddStream(Info(1, 4, {"h"}), &s);
  EXPECT_THAT(s.sent, ElementsAre(kN + 1));
}

// A delivery submitted again under the same id replaces the queued one.
TEST_F(DispatcherTest, ResubmittedIdReplacesTheQueuedDelivery) {
  Sink s;
  d.AddStream(Info(1, 1, {"h"}), &s);
  d.Submit(D(1), Ok);
  std::vector<std::string> done;
  auto record = [&](const std::string& what) {
    return [&done, what](const Outcome&, StreamId) {
      done.push_back(what);
      return absl::OkStatus();
    };
  };
  d.Submit(D(2), record("first"));
  d.Submit(D(2), record("second"));
  EXPECT_EQ(d.queued(), 1u);
  StreamError code;
  ASSERT_TRUE(d.OnOutcome(1, O(1), &code).ok());
  ASSERT_TRUE(d.OnOutcome(1, O(2), &code).ok());
  EXPECT_THAT(s.sent, ElementsAre(1, 2));
  EXPECT_THAT(done, ElementsAre("second"));
  EXPECT_EQ(d.queued(), 0u);
}

TEST(LatencyHistogramTest, QuantilesAreWithinTenPercent) {
  LatencyHistogram h;
  EXPECT_EQ(h.Quantile(0.5), absl::ZeroDuration());
  for (int i = 1; i <= 1000; ++i) h.Add(absl::Microseconds(i));
  auto near = [](absl::Duration got, double want_us) {
    const double us = absl::ToDoubleMicroseconds(got);
    return us >= want_us / 1.1 && us <= want_us * 1.1;
  };
  EXPECT_TRUE(near(h.Quantile(0.5), 500)) << h.Quantile(0.5);
  EXPECT_TRUE(near(h.Quantile(0.99), 990)) << h.Quantile(0.99);
  EXPECT_TRUE(near(h.Quantile(1.0), 1000)) << h.Quantile(1.0);
}

// What metrics read: queue adds (requeues included), the wait before each
// delivery, free credits, streams and queued deliveries per resource.
TEST_F(DispatcherTest, ReportsQueueingCreditsAndQueuedByResource) {
  auto pods = std::make_shared<kube::ResourceInfo>();
  pods->version = "v1";
  pods->plural = "pods";
  std::vector<DeliveryId> queued;
  std::vector<absl::Duration> waited;
  d.set_on_queued([&](const Delivery& x) { queued.push_back(x.id); });
  d.set_observer([&](const DispatchEvent& e) {
    if (e.kind == DispatchEvent::Kind::kDelivery) waited.push_back(e.waited);
  });
  Sink a;
  d.AddStream(Info(11, 2, {"h"}), &a);
  EXPECT_EQ(d.stream_count(), 1u);
  EXPECT_EQ(d.free_credits(), 2u);
  for (DeliveryId id : {1, 2, 3}) {
    Delivery x = D(id);
    x.resource = pods;
    d.Submit(std::move(x), Ok);
  }
  Delivery activity = D(4);  // About no object.
  d.Submit(std::move(activity), Ok);
  EXPECT_THAT(queued, ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(d.free_credits(), 0u);
  EXPECT_THAT(d.QueuedByResource(),
              ElementsAre(std::make_pair(std::string("pods.v1"), size_t{1})));
  clock_.Advance(absl::Seconds(3));
  StreamError code;
  ASSERT_TRUE(d.OnOutcome(11, O(1), &code).ok());
  // 3 went out after waiting 3 s; 1 and 2 went out at once.
  EXPECT_THAT(waited, ElementsAre(absl::ZeroDuration(), absl::ZeroDuration(),
                                  absl::Seconds(3)));
  // The stream ends: its two deliveries in flight are queued again.
  d.RemoveStream(11);
  EXPECT_EQ(d.stream_count(), 0u);
  EXPECT_EQ(d.free_credits(), 0u);
  EXPECT_THAT(queued, ElementsAre(1, 2, 3, 4, 3, 2));
  EXPECT_THAT(d.QueuedByResource(),
              ElementsAre(std::make_pair(std::string("pods.v1"), size_t{2})));
}

}  // namespace
}  // namespace herald::engine
