// Time as a dependency: production code asks a Clock, tests inject a
// FakeClock and move it by hand instead of sleeping.
#ifndef HERALD_SERVER_RUNTIME_CLOCK_H_
#define HERALD_SERVER_RUNTIME_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace herald::runtime {

// Reads the time and waits. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
  // Blocks for `d`, or until `stop` (if given) is notified. Returns true when
  // the full time passed, false when stopped.
  virtual bool SleepFor(absl::Duration d,
                        absl::Notification* stop = nullptr) = 0;

  // The process-wide real clock: wall time (absl::Now).
  static Clock* Real();
  // The process-wide monotonic clock: std::chrono::steady_clock as an
  // absl::Time since an arbitrary start. It never jumps with the wall clock;
  // what compares durations across a long time (a Lease's expiry) reads it.
  static Clock* Monotonic();
};

// A clock that only moves when told to. SleepFor advances it immediately, so
// code that waits runs through its schedule without wall time passing.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : now_(start) {}

  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  bool SleepFor(absl::Duration d, absl::Notification* stop = nullptr) override {
    if (stop != nullptr && stop->HasBeenNotified()) return false;
    Advance(d);
    return true;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
    slept_ += d;
  }
  // Total time passed through SleepFor and Advance.
  absl::Duration Slept() {
    absl::MutexLock lock(&mu_);
    return slept_;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  absl::Duration slept_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
};

}  // namespace herald::runtime

#endif  // HERALD_SERVER_RUNTIME_CLOCK_H_
