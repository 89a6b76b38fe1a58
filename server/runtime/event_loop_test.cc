#include "server/runtime/event_loop.h"

#include <atomic>
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

}  // namespace
}  // namespace herald::runtime
