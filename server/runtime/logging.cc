#include "server/runtime/logging.h"

#include <unistd.h>

#include <atomic>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpc/support/log.h"
#include "nlohmann/json.hpp"

namespace herald::runtime {
namespace {

std::atomic<int> min_severity{static_cast<int>(Severity::kInfo)};
std::atomic<int> log_format{static_cast<int>(LogFormat::kText)};

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

// "kopfexamples.v1.kopf.dev default/kex-1", leaving out what is empty.
std::string ObjectText(const ObjectRef& o) {
  std::string text = o.resource;
  if (!o.ns.empty() || !o.name.empty()) {
    if (!text.empty()) text += ' ';
    text += o.ns;
    if (!o.ns.empty() && !o.name.empty()) text += '/';
    text += o.name;
  }
  return text;
}

std::string TextLine(const LogRecord& r) {
  std::string line =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", r.time, absl::UTCTimeZone());
  line += ' ';
  line += SeverityLetter(r.severity);
  line += " [";
  line += r.logger;
  line += "] ";
  const std::string object = r.message_names_object ? "" : ObjectText(r.object);
  if (!object.empty()) {
    line += object;
    line += ": ";
  }
  line += r.message;
  line += '\n';
  return line;
}

std::string JsonLine(const LogRecord& r) {
  // Keys in the order they are read: when, how bad, who, what, about what.
  nlohmann::ordered_json line;
  line["time"] =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", r.time, absl::UTCTimeZone());
  line["level"] = AbslUnparseFlag(r.severity);
  line["logger"] = r.logger;
  line["message"] = r.message;
  if (!r.object.ns.empty()) line["namespace"] = r.object.ns;
  if (!r.object.name.empty()) line["name"] = r.object.name;
  if (!r.object.resource.empty()) line["resource"] = r.object.resource;
  if (!r.handler_id.empty()) line["id"] = r.handler_id;
  // Invalid UTF-8 becomes U+FFFD rather than an exception; control
  // characters are escaped as \n, \t, \u001b, ...
  std::string text = line.dump(-1, ' ', /*ensure_ascii=*/false,
                               nlohmann::json::error_handler_t::replace);
  text += '\n';
  return text;
}

void GrpcLog(gpr_log_func_args* args) {
  LogRecord r;
  r.time = absl::Now();
  switch (args->severity) {
    case GPR_LOG_SEVERITY_DEBUG:
      r.severity = Severity::kDebug;
      break;
    case GPR_LOG_SEVERITY_INFO:
      r.severity = Severity::kInfo;
      break;
    default:
      r.severity = Severity::kError;
      break;
  }
  if (r.severity < MinLogSeverity()) return;
  r.logger = "grpc";
  r.message = args->message == nullptr ? "" : args->message;
  WriteLog(r);
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

void SetLogFormat(LogFormat format) {
  log_format.store(static_cast<int>(format));
}

LogFormat GetLogFormat() {
  return static_cast<LogFormat>(log_format.load(std::memory_order_relaxed));
}

bool AbslParseFlag(absl::string_view text, LogFormat* format,
                   std::string* error) {
  for (LogFormat f : {LogFormat::kText, LogFormat::kJson}) {
    if (text == AbslUnparseFlag(f)) {
      *format = f;
      return true;
    }
  }
  *error = "not text or json";
  return false;
}

std::string AbslUnparseFlag(LogFormat format) {
  return format == LogFormat::kJson ? "json" : "text";
}

std::string FormatLogLine(const LogRecord& record, LogFormat format) {
  return format == LogFormat::kJson ? JsonLine(record) : TextLine(record);
}

void WriteLog(const LogRecord& record) {
  static absl::Mutex mu(absl::kConstInit);
  const std::string line = FormatLogLine(record, GetLogFormat());
  absl::MutexLock lock(&mu);
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

void RouteGrpcLogs() { gpr_set_log_function(GrpcLog); }

LogMessage::LogMessage(Severity severity, absl::string_view logger) {
  record_.time = absl::Now();
  record_.severity = severity;
  record_.logger.assign(logger.data(), logger.size());
}

LogMessage::~LogMessage() {
  // Nothing leaves a destructor: a line that cannot be built (memory
  // exhausted) is dropped.
  try {
    record_.message = stream_.str();
    WriteLog(record_);
  } catch (...) {
  }
}

}  // namespace herald::runtime
