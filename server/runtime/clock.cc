#include "server/runtime/clock.h"

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

}  // namespace

Clock* Clock::Real() {
  static RealClock* clock = new RealClock();
  return clock;
}

}  // namespace herald::runtime
