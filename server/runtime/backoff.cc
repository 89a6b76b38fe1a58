#include "server/runtime/backoff.h"

#include <algorithm>
#include <random>

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
    if (!gen_) {
      if (options_.seed != 0) {
        std::seed_seq seq{options_.seed};
        gen_.emplace(seq);
      } else {
        gen_.emplace();
      }
    }
    d = d * absl::Uniform(*gen_, 1.0 - options_.jitter, 1.0 + options_.jitter);
  }
  return d;
}

}  // namespace herald::runtime
