// Retry delays. Kopf's sequence for API calls and watch reconnects is
// Fibonacci-like (1, 1, 2, 3, 5, 8, 13, 21 s, then 21 s on), which users know;
// Backoff produces it, optionally with jitter, and resets on success.
#ifndef HERALD_SERVER_RUNTIME_BACKOFF_H_
#define HERALD_SERVER_RUNTIME_BACKOFF_H_

#include <cstdint>
#include <optional>

#include "absl/random/random.h"
#include "absl/time/time.h"

namespace herald::runtime {

// Not thread-safe: one Backoff per retry loop.
class Backoff {
 public:
  struct Options {
    absl::Duration unit = absl::Seconds(1);
    absl::Duration max = absl::Seconds(21);
    // Each delay is multiplied by a factor in [1 - jitter, 1 + jitter].
    double jitter = 0.0;
    // Non-zero: the jitter's generator is seeded with it (repeatable within a
    // build); zero: seeded randomly, so that retry loops do not run in step.
    uint64_t seed = 0;
  };

  Backoff() : Backoff(Options()) {}
  explicit Backoff(Options options) : options_(options) {}

  // The delay before the next attempt; advances the sequence.
  absl::Duration Next();
  // Back to the first delay (after a success).
  void Reset() {
    a_ = 0;
    b_ = 1;
    attempts_ = 0;
  }
  int attempts() const { return attempts_; }

 private:
  Options options_;
  // Made on the first jittered delay: most Backoffs have no jitter.
  std::optional<absl::BitGen> gen_;
  int64_t a_ = 0, b_ = 1;
  int attempts_ = 0;
};

}  // namespace herald::runtime

#endif  // HERALD_SERVER_RUNTIME_BACKOFF_H_
