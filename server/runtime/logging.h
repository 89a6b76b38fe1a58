// Logging for the sidecar: one line per message on stderr, with a UTC
// timestamp, a severity letter and the component that speaks.
//
//   HERALD_LOG(INFO, "kube") << "watching " << resource;
//
// Thread-safe: each line is written with a single write under a mutex.
#ifndef HERALD_SERVER_RUNTIME_LOGGING_H_
#define HERALD_SERVER_RUNTIME_LOGGING_H_

#include <sstream>
#include <string>

#include "absl/strings/string_view.h"

namespace herald::runtime {

enum class Severity { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Messages below this severity are dropped. Default: kInfo.
void SetMinLogSeverity(Severity severity);
Severity MinLogSeverity();

// The severity as --log_level names it: "debug", "info", "warning" or
// "error" (Abseil's flag extension point, so absl::ParseFlag and
// absl::UnparseFlag take it). An error says why `text` is not one.
bool AbslParseFlag(absl::string_view text, Severity* severity,
                   std::string* error);
std::string AbslUnparseFlag(Severity severity);

// Writes one formatted line. Prefer the HERALD_LOG macro.
void WriteLog(Severity severity, absl::string_view component,
              absl::string_view message);

// Collects one message and writes it when destroyed.
class LogMessage {
 public:
  LogMessage(Severity severity, absl::string_view component)
      : severity_(severity), component_(component) {}
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  ~LogMessage() { WriteLog(severity_, component_, stream_.str()); }

  std::ostream& stream() { return stream_; }

 private:
  Severity severity_;
  std::string component_;
  std::ostringstream stream_;
};

}  // namespace herald::runtime

namespace herald::runtime::log_internal {
// The names HERALD_LOG takes as its first argument.
inline constexpr Severity DEBUG = Severity::kDebug;
inline constexpr Severity INFO = Severity::kInfo;
inline constexpr Severity WARNING = Severity::kWarning;
inline constexpr Severity ERROR = Severity::kError;
}  // namespace herald::runtime::log_internal

#define HERALD_LOG(severity, component)                                      \
  if (::herald::runtime::log_internal::severity <                            \
      ::herald::runtime::MinLogSeverity()) {                                 \
  } else                                                                     \
    ::herald::runtime::LogMessage(::herald::runtime::log_internal::severity, \
                                  (component))                               \
        .stream()

#endif  // HERALD_SERVER_RUNTIME_LOGGING_H_
