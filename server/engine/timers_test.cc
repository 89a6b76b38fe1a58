#include "server/engine/timers.h"

#include "gtest/gtest.h"

namespace herald::engine {
namespace {

using nlohmann::json;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

Handler Timer(int interval, int initial_delay = 0, int idle = 0) {
  Handler h;
  h.spec.id = "t";
  h.spec.cause = Cause::kTimer;
  h.spec.timer.interval = absl::Seconds(interval);
  h.spec.timer.initial_delay = absl::Seconds(initial_delay);
  h.spec.timer.idle = absl::Seconds(idle);
  return h;
}

TEST(TimersTest, TimersStopWhenTheObjectIsDeleted) {
  const Handler h = Timer(10);
  json body = {{"metadata", {{"name", "x"}}}};
  EXPECT_TRUE(TimerApplies(h, body));
  body["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z";
  EXPECT_FALSE(TimerApplies(h, body));
  Handler create = h;
  create.spec.cause = Cause::kCreate;
  EXPECT_FALSE(TimerApplies(create, {{"metadata", {{"name", "x"}}}}));
}

TEST(TimersTest, TheFirstRunWaitsForTheInitialDelay) {
  EXPECT_EQ(FirstTimerRun(Timer(10, 3), kNow), kNow + absl::Seconds(3));
  EXPECT_EQ(FirstTimerRun(Timer(10), kNow), kNow);
}

TEST(TimersTest, IdleTimersWaitUntilTheObjectIsQuiet) {
  const Handler h = Timer(10, 0, 5);
  EXPECT_EQ(*IdleUntil(h, kNow - absl::Seconds(2), kNow),
            kNow + absl::Seconds(3));
  EXPECT_FALSE(IdleUntil(h, kNow - absl::Seconds(5), kNow));
  EXPECT_FALSE(IdleUntil(Timer(10), kNow, kNow));
}

TEST(TimersTest, SharpTimersKeepToTheirGrid) {
  const absl::Time first = kNow - absl::Seconds(23);
  // A run that ended 23 s after first sight: the next grid point of 10 s
  // is 7 s away; a timer that is not sharp waits its whole interval.
  EXPECT_EQ(NextTimerRunIn(absl::Seconds(10), true, first, kNow),
            absl::Seconds(7));
  EXPECT_EQ(NextTimerRunIn(absl::Seconds(10), false, first, kNow),
            absl::Seconds(10));
}

}  // namespace
}  // namespace herald::engine
