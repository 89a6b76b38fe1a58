#include "server/runtime/backoff.h"

#include <algorithm>

namespace herald::runtime {

absl::Duration Backoff::Next() {
  ++attempts_;
  // 1, 1, 2, 3, 5, 8, ...: b_ is the next Fibonacci number.
  int64_t units = b_;
  if (options_.unit * units < options_.max) {
    int64_t next = a_ + b_;
    a_ = b_;
    b_ = next;
  }
  absl::Duration d = std::min(options_.unit * units, options_.max);
  if (options_.jitter > 0) {
    // xorshift64: cheap, deterministic for a given seed.
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    double u =
        static_cast<double>(rng_ >> 11) / static_cast<double>(1ULL << 53);
    d = d * (1.0 - options_.jitter + 2.0 * options_.jitter * u);
  }
  return d;
}

}  // namespace herald::runtime
