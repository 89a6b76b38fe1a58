#include "tests/bench/cc/sent_ns.h"

#include <string.h>
#include <time.h>

namespace herald::bench {
namespace {

constexpr char kQuotedKey[] = "\"bench.herald.dev/sent-ns\"";
constexpr size_t kQuotedKeyLen = sizeof(kQuotedKey) - 1;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Parses the value that follows a key at `p` (just after its closing quote).
absl::optional<int64_t> ParseValue(const char* p, const char* end) {
  while (p < end && IsSpace(*p)) ++p;
  if (p == end || *p != ':') return absl::nullopt;
  ++p;
  while (p < end && IsSpace(*p)) ++p;
  const bool quoted = p < end && *p == '"';
  if (quoted) ++p;
  const char* digits = p;
  int64_t value = 0;
  // 18 digits always fit in int64_t; nanoseconds since 1970 need 19 until
  // 2286, so allow 19 and check for overflow.
  while (p < end && *p >= '0' && *p <= '9') {
    const int64_t d = *p - '0';
    if (value > (INT64_MAX - d) / 10) return absl::nullopt;
    value = value * 10 + d;
    ++p;
  }
  if (p == digits) return absl::nullopt;
  if (quoted && (p == end || *p != '"')) return absl::nullopt;
  return value;
}

}  // namespace

absl::optional<int64_t> FindSentNs(absl::string_view body_json) {
  const char* p = body_json.data();
  const char* const end = p + body_json.size();
  while (p < end) {
    const void* hit = memmem(p, end - p, kQuotedKey, kQuotedKeyLen);
    if (hit == nullptr) return absl::nullopt;
    const char* key = static_cast<const char*>(hit);
    // Inside an escaped string the key reads \"bench...sent-ns\", so the
    // pattern's closing quote never matches there; an opening quote preceded
    // by a backslash is checked anyway for keys that end a string.
    if (key == body_json.data() || key[-1] != '\\') {
      if (auto v = ParseValue(key + kQuotedKeyLen, end)) return v;
    }
    p = key + 1;
  }
  return absl::nullopt;
}

int64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace herald::bench
