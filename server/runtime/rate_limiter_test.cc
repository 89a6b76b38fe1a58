#include "server/runtime/rate_limiter.h"

#include "gtest/gtest.h"

namespace herald::runtime {
namespace {

TEST(RateLimiterTest, BurstIsFreeThenPacedAtQps) {
  FakeClock clock;
  RateLimiter rl(/*qps=*/10, /*burst=*/3, &clock);
  EXPECT_EQ(rl.Reserve(), absl::ZeroDuration());
  EXPECT_EQ(rl.Reserve(), absl::ZeroDuration());
  EXPECT_EQ(rl.Reserve(), absl::ZeroDuration());
  // The bucket is empty: the next callers wait 100 ms, 200 ms, ...
  EXPECT_EQ(rl.Reserve(), absl::Milliseconds(100));
  EXPECT_EQ(rl.Reserve(), absl::Milliseconds(200));
}

TEST(RateLimiterTest, RefillsWithTimeUpToBurst) {
  FakeClock clock;
  RateLimiter rl(10, 2, &clock);
  rl.Reserve();
  rl.Reserve();
  clock.Advance(absl::Seconds(60));
  EXPECT_EQ(rl.Reserve(), absl::ZeroDuration());
  EXPECT_EQ(rl.Reserve(), absl::ZeroDuration());
  EXPECT_GT(rl.Reserve(), absl::ZeroDuration());
}

TEST(RateLimiterTest, AcquireSleepsOnTheClock) {
  FakeClock clock;
  RateLimiter rl(5, 1, &clock);
  rl.Acquire();
  rl.Acquire();
  rl.Acquire();
  EXPECT_EQ(clock.Slept(), absl::Milliseconds(200) + absl::Milliseconds(200));
}

TEST(RateLimiterTest, ZeroQpsMeansNoLimit) {
  FakeClock clock;
  RateLimiter rl(0, 1, &clock);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(rl.Reserve(), absl::ZeroDuration());
}

}  // namespace
}  // namespace herald::runtime
