// Latency samples and the small pieces of JSON output the benchmark's C++
// binaries share.
#ifndef HERALD_TESTS_BENCH_CC_SAMPLES_H_
#define HERALD_TESTS_BENCH_CC_SAMPLES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace herald::bench {

// Durations in nanoseconds, kept up to a cap (the first `cap` samples; later
// ones are only counted). Not thread-safe.
class Samples {
 public:
  static constexpr size_t kDefaultCap = 1000000;

  explicit Samples(size_t cap = kDefaultCap) : cap_(cap) {}

  void Add(int64_t ns) {
    if (ns_.size() < cap_) {
      ns_.push_back(ns);
    } else {
      ++dropped_;
    }
  }
  const std::vector<int64_t>& ns() const { return ns_; }
  // Samples seen beyond the cap.
  uint64_t dropped() const { return dropped_; }

 private:
  size_t cap_;
  std::vector<int64_t> ns_;
  uint64_t dropped_ = 0;
};

// Appends a JSON array of the durations in microseconds, exact to the
// nanosecond: [12.5,130.042,-3].
void AppendMicrosArray(const std::vector<int64_t>& ns, std::string* out);

// Appends a JSON string literal.
void AppendJsonString(absl::string_view s, std::string* out);

// Writes `text` to `path` through a temporary file renamed into place, so a
// reader never sees a partial file.
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view text);

}  // namespace herald::bench

#endif  // HERALD_TESTS_BENCH_CC_SAMPLES_H_
