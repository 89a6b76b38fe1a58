#include "server/runtime/clock.h"

#include <chrono>

namespace herald::runtime {
namespace {

class RealClock : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
  bool SleepFor(absl::Duration d, absl::Notification* stop) override {
    if (stop == nullptr) {
      absl::SleepFor(d);
      return true;
    }
    return !stop->WaitForNotificationWithTimeout(d);
  }
};

class MonotonicClock : public RealClock {
 public:
  absl::Time Now() override {
    return absl::UnixEpoch() +
           absl::FromChrono(
               std::chrono::steady_clock::now().time_since_epoch());
  }
};

}  // namespace

Clock* Clock::Monotonic() {
  static MonotonicClock* clock = new MonotonicClock();
  return clock;
}

Clock* Clock::Real() {
  static RealClock* clock = new RealClock();
  return clock;
}

}  // namespace herald::runtime
