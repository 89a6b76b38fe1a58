// Logging for the sidecar: one line per message on stderr, as text (a UTC
// timestamp, a severity letter, the component that speaks) or as one JSON
// object (--log_format=json).
//
//   HERALD_LOG(INFO, "kube") << "watching " << resource;
//   HERALD_LOG(WARNING, "engine")
//       .With(ObjectRef{"kopfexamples.v1.kopf.dev", "default", "kex-1"})
//       .WithHandler("create_fn")
//       << "handler create_fn failed temporarily: " << why;
//
// Text:  2026-01-02T03:04:05.678Z W [engine] kopfexamples.v1.kopf.dev
//        default/kex-1: handler create_fn failed temporarily: ...
// JSON:  {"time":"2026-01-02T03:04:05.678901Z","level":"warning",
//         "logger":"engine","message":"handler create_fn failed ...",
//         "namespace":"default","name":"kex-1",
//         "resource":"kopfexamples.v1.kopf.dev","id":"create_fn"}
//
// In text the object is the message's prefix, as the lines named it before
// context existed; the handler's id is a key of JSON lines only, since the
// messages name their handler in words. JSON lines are valid JSON whatever
// the message holds: quotes, newlines and control characters are escaped,
// and bytes that are not UTF-8 become U+FFFD.
//
// Thread-safe: each line is written with a single write under a mutex.
#ifndef HERALD_SERVER_RUNTIME_LOGGING_H_
#define HERALD_SERVER_RUNTIME_LOGGING_H_

#include <sstream>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

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

// How lines are written: --log_format's "text" (the default) or "json".
enum class LogFormat { kText = 0, kJson = 1 };

void SetLogFormat(LogFormat format);
LogFormat GetLogFormat();

bool AbslParseFlag(absl::string_view text, LogFormat* format,
                   std::string* error);
std::string AbslUnparseFlag(LogFormat format);

// The Kubernetes object a line is about. `resource` is its resource's full
// name ("kopfexamples.v1.kopf.dev"); `ns` is empty for a cluster-scoped
// object. Empty fields are left out of the line.
struct ObjectRef {
  std::string resource;
  std::string ns;
  std::string name;
};

// One line's content, before it is formatted.
struct LogRecord {
  absl::Time time;
  Severity severity = Severity::kInfo;
  std::string logger;  // the component: "kube", "engine", "rpc", ...
  std::string message;
  ObjectRef object;
  // The message names the object itself: text lines have no prefix.
  bool message_names_object = false;
  std::string handler_id;  // empty: about no handler
};

// The line for `record` in `format`, ending in a newline.
std::string FormatLogLine(const LogRecord& record, LogFormat format);

// Writes `record` as one line in the current format. Prefer HERALD_LOG.
void WriteLog(const LogRecord& record);

// Routes gRPC's own log lines (gpr_log) through WriteLog, as logger "grpc",
// so that they are in the current format too.
void RouteGrpcLogs();

// Collects one message and its context, and writes it when destroyed.
class LogMessage {
 public:
  LogMessage(Severity severity, absl::string_view logger);
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  ~LogMessage();

  // The object the line is about.
  LogMessage& With(ObjectRef object) {
    record_.object = std::move(object);
    return *this;
  }
  // The object as keys of JSON lines only, for a message that names it in
  // its own words (text lines are left as the message says them).
  LogMessage& WithObjectKeys(ObjectRef object) {
    record_.object = std::move(object);
    record_.message_names_object = true;
    return *this;
  }
  // The handler the line is about (its id).
  LogMessage& WithHandler(absl::string_view id) {
    record_.handler_id.assign(id.data(), id.size());
    return *this;
  }

  template <typename T>
  LogMessage& operator<<(const T& value) {
    stream_ << value;
    return *this;
  }
  // Stream manipulators (std::hex, ...).
  LogMessage& operator<<(std::ostream& (*manipulator)(std::ostream&)) {
    stream_ << manipulator;
    return *this;
  }

 private:
  LogRecord record_;
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

// A LogMessage that takes `<<` and context (.With, .WithObjectKeys,
// .WithHandler); nothing
// is evaluated below the minimum severity.
#define HERALD_LOG(severity, component)                                      \
  if (::herald::runtime::log_internal::severity <                            \
      ::herald::runtime::MinLogSeverity()) {                                 \
  } else                                                                     \
    ::herald::runtime::LogMessage(::herald::runtime::log_internal::severity, \
                                  (component))

#endif  // HERALD_SERVER_RUNTIME_LOGGING_H_
