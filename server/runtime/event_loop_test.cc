#include "server/runtime/event_loop.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace herald::runtime {
namespace {

TEST(EventLoopTest, TasksRunInOrderTimersWhenDue) {
  FakeClock clock;
  EventLoop loop(&clock);
  std::string log;
  loop.PostAt(clock.Now() + absl::Seconds(2), [&] { log += "t2 "; });
  auto t1 = loop.PostAt(clock.Now() + absl::Seconds(1), [&] { log += "t1 "; });
  loop.PostAt(clock.Now() + absl::Seconds(1), [&] { log += "t1b "; });
  loop.Post([&] { log += "a "; });
  loop.Post([&] { log += "b "; });
  EXPECT_EQ(loop.RunUntilIdle(), 2u);
  EXPECT_EQ(log, "a b ");
  EXPECT_EQ(loop.NextTimer(), clock.Now() + absl::Seconds(1));
  clock.Advance(absl::Seconds(1));
  loop.RunUntilIdle();
  EXPECT_EQ(log, "a b t1 t1b ");
  loop.Cancel(t1);  // Already ran: ignored.
  clock.Advance(absl::Seconds(5));
  loop.RunUntilIdle();
  EXPECT_EQ(log, "a b t1 t1b t2 ");
}

TEST(EventLoopTest, CancelledTimersDoNotRun) {
  FakeClock clock;
  EventLoop loop(&clock);
  int runs = 0;
  auto id = loop.PostAt(clock.Now() + absl::Seconds(1), [&] { ++runs; });
  loop.Cancel(id);
  clock.Advance(absl::Seconds(2));
  loop.RunUntilIdle();
  EXPECT_EQ(runs, 0);
  EXPECT_EQ(loop.NextTimer(), absl::InfiniteFuture());
}

TEST(EventLoopTest, RunsOnItsThreadUntilStopped) {
  EventLoop loop;
  std::thread t([&] { loop.Run(); });
  absl::Notification done;
  std::atomic<bool> in_loop{false};
  loop.PostAt(absl::Now() + absl::Milliseconds(20), [&] {
    in_loop = loop.InLoopThread();
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(in_loop);
  loop.Stop();
  t.join();
}

// A task posted after Stop is refused at once: Post says so and the task
// (with what it holds) is released, instead of waiting in a queue that
// nothing will run.
TEST(EventLoopTest, PostAfterStopIsRefused) {
  EventLoop loop;
  std::thread t([&] { loop.Run(); });
  loop.Stop();
  t.join();
  auto held = std::make_shared<int>(0);
  std::weak_ptr<int> watch = held;
  int runs = 0;
  EXPECT_FALSE(loop.Post([held = std::move(held), &runs] { ++runs; }));
  EXPECT_TRUE(watch.expired());
  EXPECT_EQ(loop.PostAt(absl::Now(), [&runs] { ++runs; }), 0u);
  EXPECT_EQ(loop.RunUntilIdle(), 0u);
  EXPECT_EQ(runs, 0);
}

// Tasks still queued when the loop stops are released by Stop, so that
// whoever waits for one (through something it holds) learns it will not run.
TEST(EventLoopTest, StopReleasesQueuedTasks) {
  FakeClock clock;
  EventLoop loop(&clock);
  auto held = std::make_shared<int>(0);
  std::weak_ptr<int> watch = held;
  EXPECT_TRUE(loop.Post([held] {}));
  EXPECT_NE(loop.PostAt(clock.Now() + absl::Seconds(1), [held] {}), 0u);
  held.reset();
  EXPECT_FALSE(watch.expired());
  loop.Stop();
  EXPECT_TRUE(watch.expired());
  EXPECT_EQ(loop.NextTimer(), absl::InfiniteFuture());
}

// The owner thread is published safely: other threads may ask InLoopThread
// while the loop starts and stops, and the answer is true only on the thread
// running the loop, while it runs.
TEST(EventLoopTest, InLoopThreadOnlyWhileRunning) {
  EventLoop loop;
  std::atomic<bool> reading{true};
  std::atomic<int> other_true{0};
  std::thread reader([&] {
    while (reading) other_true += loop.InLoopThread();
  });
  std::atomic<bool> in_task{false};
  std::atomic<bool> after_run{true};
  absl::Notification ran;
  std::thread t([&] {
    loop.Run();
    after_run = loop.InLoopThread();
  });
  EXPECT_TRUE(loop.Post([&] {
    in_task = loop.InLoopThread();
    ran.Notify();
  }));
  ASSERT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(loop.InLoopThread());
  loop.Stop();
  t.join();
  reading = false;
  reader.join();
  EXPECT_TRUE(in_task);
  EXPECT_FALSE(after_run);
  EXPECT_EQ(other_true, 0);
}

// The real time, counting how often it was read.
class CountingClock : public Clock {
 public:
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    ++reads_;
    return absl::Now();
  }
  bool SleepFor(absl::Duration d, absl::Notification* stop) override {
    return Real()->SleepFor(d, stop);
  }
  int reads() {
    absl::MutexLock lock(&mu_);
    return reads_;
  }
  // Waits until the clock was read `n` times (false after 10 s).
  bool AwaitReads(int n) {
    absl::MutexLock lock(&mu_);
    auto done = [this, n]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return reads_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(10));
  }

 private:
  absl::Mutex mu_;
  int reads_ ABSL_GUARDED_BY(mu_) = 0;
};

// A timer posted while the loop waits for a later one runs when it is due,
// not when the later one is.
TEST(EventLoopTest, AnEarlierTimerWakesTheLoop) {
  CountingClock clock;
  EventLoop loop(&clock);
  std::thread t([&] { loop.Run(); });
  EXPECT_NE(loop.PostAt(absl::Now() + absl::Hours(1), [] {}), 0u);
  absl::Notification idle;
  std::atomic<int> reads{0};
  EXPECT_TRUE(loop.Post([&] {
    reads = clock.reads();
    idle.Notify();
  }));
  ASSERT_TRUE(idle.WaitForNotificationWithTimeout(absl::Seconds(10)));
  // After the task, the loop reads the clock to look for a ready timer and
  // to compute its wait, under its lock: a PostAt from here on comes after
  // the loop started waiting for the timer an hour away.
  ASSERT_TRUE(clock.AwaitReads(reads + 2));
  absl::Notification due;
  EXPECT_NE(
      loop.PostAt(absl::Now() + absl::Milliseconds(10), [&] { due.Notify(); }),
      0u);
  EXPECT_TRUE(due.WaitForNotificationWithTimeout(absl::Seconds(10)));
  loop.Stop();
  t.join();
}

// IsThreadSafe: any thread before the loop first ran; then only the thread
// that last entered Run or RunUntilIdle, inside it and between runs.
TEST(EventLoopTest, IsThreadSafeOnTheThreadThatRunsTheLoop) {
  FakeClock clock;
  EventLoop loop(&clock);
  auto elsewhere = [&loop] {
    bool safe = false;
    std::thread t([&] { safe = loop.IsThreadSafe(); });
    t.join();
    return safe;
  };
  EXPECT_TRUE(loop.IsThreadSafe());
  EXPECT_TRUE(elsewhere());
  bool inside = false;
  loop.Post([&] { inside = loop.IsThreadSafe() && !elsewhere(); });
  loop.RunUntilIdle();
  EXPECT_TRUE(inside);
  EXPECT_TRUE(loop.IsThreadSafe());
  EXPECT_FALSE(elsewhere());

  // Another thread runs it: that thread now, and no longer this one.
  absl::Notification running;
  std::thread runner([&] {
    loop.Post([&] { running.Notify(); });
    loop.Run();
  });
  running.WaitForNotification();
  EXPECT_FALSE(loop.IsThreadSafe());
  bool on_runner = false;
  absl::Notification asked;
  loop.Post([&] {
    on_runner = loop.IsThreadSafe();
    asked.Notify();
  });
  asked.WaitForNotification();
  EXPECT_TRUE(on_runner);
  loop.Stop();
  runner.join();
  EXPECT_FALSE(loop.IsThreadSafe());
}

TEST(EventLoopDeathTest, AssertOnLoopAbortsOffTheLoopThreadNamingTheFunction) {
  FakeClock clock;
  EventLoop loop(&clock);
  loop.RunUntilIdle();
  HERALD_ASSERT_ON_LOOP(&loop);  // This thread runs the loop: passes.
  EXPECT_DEATH(
      {
        std::thread t([&] { HERALD_ASSERT_ON_LOOP(&loop); });
        t.join();
      },
      "event_loop_test.cc:[0-9]+: .*TestBody.* called off its event loop's "
      "thread");
}

}  // namespace
}  // namespace herald::runtime
