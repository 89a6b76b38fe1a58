// Finds the time an event was produced, as the benchmark's event sources
// stamp it: metadata.annotations["bench.herald.dev/sent-ns"], wall-clock
// nanoseconds (CLOCK_REALTIME) as a decimal string.
//
// The body is scanned for the quoted key rather than parsed: a handler that
// measures latency must not pay for a JSON parse per delivery.
#ifndef HERALD_TESTS_BENCH_CC_SENT_NS_H_
#define HERALD_TESTS_BENCH_CC_SENT_NS_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace herald::bench {

inline constexpr char kSentNsAnnotation[] = "bench.herald.dev/sent-ns";

// The annotation's value in `body_json` (an object's JSON text), or nullopt
// when the key is absent or its value is not a decimal integer (quoted or
// not). A key inside an escaped string, such as a copy of the object in
// kubectl's last-applied-configuration, does not match.
absl::optional<int64_t> FindSentNs(absl::string_view body_json);

// CLOCK_REALTIME in nanoseconds: the clock the annotation is written with.
int64_t RealtimeNs();

// CLOCK_MONOTONIC in nanoseconds, for intervals measured in one process.
int64_t MonotonicNs();

}  // namespace herald::bench

#endif  // HERALD_TESTS_BENCH_CC_SENT_NS_H_
