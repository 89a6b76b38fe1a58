// A client-side rate limit for API requests: a token bucket with a rate (QPS)
// and a burst, like client-go's.
#ifndef HERALD_SERVER_RUNTIME_RATE_LIMITER_H_
#define HERALD_SERVER_RUNTIME_RATE_LIMITER_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/runtime/clock.h"

namespace herald::runtime {

// Thread-safe. Each Acquire takes one token, waiting for it when the bucket is
// empty. A rate of 0 or less means no limit.
class RateLimiter {
 public:
  RateLimiter(double qps, int burst, Clock* clock = Clock::Real());

  // Reserves a token and returns how long the caller must wait before using
  // it (zero when one was available). Reservations queue fairly.
  absl::Duration Reserve();
  // Reserve, then sleep on the clock.
  void Acquire();

 private:
  const double qps_;
  const double burst_;
  Clock* clock_;
  absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::runtime

#endif  // HERALD_SERVER_RUNTIME_RATE_LIMITER_H_
