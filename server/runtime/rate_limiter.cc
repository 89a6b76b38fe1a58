#include "server/runtime/rate_limiter.h"

#include <algorithm>

namespace herald::runtime {

RateLimiter::RateLimiter(double qps, int burst, Clock* clock)
    : qps_(qps),
      burst_(std::max(1, burst)),
      clock_(clock),
      tokens_(std::max(1, burst)),
      last_(clock->Now()) {}

absl::Duration RateLimiter::Reserve() {
  if (qps_ <= 0) return absl::ZeroDuration();
  absl::MutexLock lock(&mu_);
  absl::Time now = clock_->Now();
  if (now > last_) {
    tokens_ =
        std::min(burst_, tokens_ + absl::ToDoubleSeconds(now - last_) * qps_);
    last_ = now;
  }
  // Tokens may go negative: each waiter owns the debt it took on.
  tokens_ -= 1.0;
  if (tokens_ >= 0) return absl::ZeroDuration();
  return absl::Seconds(-tokens_ / qps_);
}

void RateLimiter::Acquire() {
  absl::Duration wait = Reserve();
  if (wait > absl::ZeroDuration()) clock_->SleepFor(wait);
}

}  // namespace herald::runtime
