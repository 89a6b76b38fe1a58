#include "server/runtime/logging.h"

#include <unistd.h>

#include <atomic>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace herald::runtime {
namespace {

std::atomic<int> min_severity{static_cast<int>(Severity::kInfo)};

char SeverityLetter(Severity s) {
  switch (s) {
    case Severity::kDebug:
      return 'D';
    case Severity::kInfo:
      return 'I';
    case Severity::kWarning:
      return 'W';
    case Severity::kError:
      return 'E';
  }
  return '?';
}

}  // namespace

void SetMinLogSeverity(Severity severity) {
  min_severity.store(static_cast<int>(severity));
}

Severity MinLogSeverity() {
  return static_cast<Severity>(min_severity.load(std::memory_order_relaxed));
}

bool AbslParseFlag(absl::string_view text, Severity* severity,
                   std::string* error) {
  for (Severity s : {Severity::kDebug, Severity::kInfo, Severity::kWarning,
                     Severity::kError}) {
    if (text == AbslUnparseFlag(s)) {
      *severity = s;
      return true;
    }
  }
  *error = "not debug, info, warning or error";
  return false;
}

std::string AbslUnparseFlag(Severity severity) {
  switch (severity) {
    case Severity::kDebug:
      return "debug";
    case Severity::kInfo:
      return "info";
    case Severity::kWarning:
      return "warning";
    case Severity::kError:
      return "error";
  }
  return "info";
}

void WriteLog(Severity severity, absl::string_view component,
              absl::string_view message) {
  static absl::Mutex mu(absl::kConstInit);
  std::string line = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                      absl::UTCTimeZone());
  line += ' ';
  line += SeverityLetter(severity);
  line += " [";
  line.append(component.data(), component.size());
  line += "] ";
  line.append(message.data(), message.size());
  line += '\n';
  absl::MutexLock lock(&mu);
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

}  // namespace herald::runtime
