#include "server/runtime/logging.h"

#include <string>

#include "absl/flags/marshalling.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace herald::runtime {
namespace {

TEST(SeverityFlagTest, ParsesEveryLevelAndUnparsesItBack) {
  for (Severity s : {Severity::kDebug, Severity::kInfo, Severity::kWarning,
                     Severity::kError}) {
    Severity parsed = Severity::kInfo;
    std::string error;
    const std::string text = absl::UnparseFlag(s);
    ASSERT_TRUE(absl::ParseFlag(text, &parsed, &error))
        << text << ": " << error;
    EXPECT_EQ(parsed, s) << text;
  }
  EXPECT_EQ(absl::UnparseFlag(Severity::kWarning), "warning");
}

TEST(SeverityFlagTest, RefusesOtherWordsSayingWhichAreAccepted) {
  for (const char* text : {"loud", "INFO", "", "warn", " info"}) {
    Severity parsed = Severity::kError;
    std::string error;
    EXPECT_FALSE(absl::ParseFlag(text, &parsed, &error)) << text;
    EXPECT_EQ(error, "not debug, info, warning or error") << text;
    EXPECT_EQ(parsed, Severity::kError) << "left unchanged: " << text;
  }
}

TEST(LogFormatFlagTest, ParsesTextAndJsonAndRefusesOtherWords) {
  for (LogFormat f : {LogFormat::kText, LogFormat::kJson}) {
    LogFormat parsed =
        f == LogFormat::kText ? LogFormat::kJson : LogFormat::kText;
    std::string error;
    ASSERT_TRUE(absl::ParseFlag(absl::UnparseFlag(f), &parsed, &error));
    EXPECT_EQ(parsed, f);
  }
  EXPECT_EQ(absl::UnparseFlag(LogFormat::kText), "text");
  EXPECT_EQ(absl::UnparseFlag(LogFormat::kJson), "json");
  for (const char* text : {"JSON", "plain", "", "json ", "full"}) {
    LogFormat parsed = LogFormat::kJson;
    std::string error;
    EXPECT_FALSE(absl::ParseFlag(text, &parsed, &error)) << text;
    EXPECT_EQ(error, "not text or json") << text;
    EXPECT_EQ(parsed, LogFormat::kJson) << "left unchanged: " << text;
  }
}

// 2026-01-02 03:04:05.678901 UTC.
absl::Time SomeTime() {
  return absl::FromCivil(absl::CivilSecond(2026, 1, 2, 3, 4, 5),
                         absl::UTCTimeZone()) +
         absl::Microseconds(678901);
}

LogRecord Record(Severity severity, std::string logger, std::string message) {
  LogRecord r;
  r.time = SomeTime();
  r.severity = severity;
  r.logger = std::move(logger);
  r.message = std::move(message);
  return r;
}

TEST(FormatLogLineTest, TextIsTimeLetterLoggerAndMessage) {
  EXPECT_EQ(FormatLogLine(Record(Severity::kInfo, "kube", "watching pods"),
                          LogFormat::kText),
            "2026-01-02T03:04:05.678Z I [kube] watching pods\n");
  EXPECT_EQ(
      FormatLogLine(Record(Severity::kError, "main", "x"), LogFormat::kText),
      "2026-01-02T03:04:05.678Z E [main] x\n");
}

TEST(FormatLogLineTest, TextPrefixesTheObjectAndLeavesTheHandlerToTheMessage) {
  LogRecord r =
      Record(Severity::kWarning, "engine", "handler create_fn failed: boom");
  r.object = {"kopfexamples.v1.kopf.dev", "default", "kex-1"};
  r.handler_id = "create_fn";
  EXPECT_EQ(FormatLogLine(r, LogFormat::kText),
            "2026-01-02T03:04:05.678Z W [engine] kopfexamples.v1.kopf.dev "
            "default/kex-1: handler create_fn failed: boom\n");
  // Cluster-scoped: no namespace.
  r.object = {"namespaces.v1", "", "team-a"};
  EXPECT_EQ(FormatLogLine(r, LogFormat::kText),
            "2026-01-02T03:04:05.678Z W [engine] namespaces.v1 team-a: "
            "handler create_fn failed: boom\n");
  // A name without its resource.
  r.object = {"", "default", "kex-1"};
  EXPECT_EQ(FormatLogLine(r, LogFormat::kText),
            "2026-01-02T03:04:05.678Z W [engine] default/kex-1: "
            "handler create_fn failed: boom\n");
}

// The one line `text` holds, parsed; fails the test unless it is exactly
// one line of JSON.
nlohmann::json ParseLine(const std::string& text) {
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\n'), text.size() - 1) << "one line: " << text;
  return nlohmann::json::parse(text);  // Throws (and fails) if not JSON.
}

TEST(FormatLogLineTest, JsonHasTheKeysInOrderAndLeavesOutEmptyContext) {
  const std::string line = FormatLogLine(
      Record(Severity::kWarning, "kube", "watch failed"), LogFormat::kJson);
  EXPECT_EQ(line, R"({"time":"2026-01-02T03:04:05.678901Z","level":"warning",)"
                  R"("logger":"kube","message":"watch failed"})"
                  "\n");
}

TEST(FormatLogLineTest, JsonCarriesTheObjectAndHandlerAsKeys) {
  LogRecord r =
      Record(Severity::kInfo, "engine", "handler create_fn succeeded");
  r.object = {"kopfexamples.v1.kopf.dev", "default", "kex-1"};
  r.handler_id = "create_fn";
  const nlohmann::json j = ParseLine(FormatLogLine(r, LogFormat::kJson));
  EXPECT_EQ(j, (nlohmann::json{{"time", "2026-01-02T03:04:05.678901Z"},
                               {"level", "info"},
                               {"logger", "engine"},
                               {"message", "handler create_fn succeeded"},
                               {"namespace", "default"},
                               {"name", "kex-1"},
                               {"resource", "kopfexamples.v1.kopf.dev"},
                               {"id", "create_fn"}}));
  // Cluster-scoped: no "namespace" key.
  r.object.ns.clear();
  const nlohmann::json c = ParseLine(FormatLogLine(r, LogFormat::kJson));
  EXPECT_FALSE(c.contains("namespace"));
  EXPECT_EQ(c["name"], "kex-1");
}

TEST(FormatLogLineTest, JsonLevelsAreTheLogLevelWords) {
  const std::pair<Severity, const char*> levels[] = {
      {Severity::kDebug, "debug"},
      {Severity::kInfo, "info"},
      {Severity::kWarning, "warning"},
      {Severity::kError, "error"}};
  for (const auto& [severity, word] : levels) {
    EXPECT_EQ(ParseLine(FormatLogLine(Record(severity, "x", "m"),
                                      LogFormat::kJson))["level"],
              word);
  }
}

TEST(FormatLogLineTest, JsonEscapesWhateverTheMessageHolds) {
  const std::string message =
      "say \"hi\"\\ \n second line\r\t\x01\x1b[31m \xc3\xbc \xe2\x9c\x93";
  LogRecord r = Record(Severity::kError, "rpc", message);
  r.object = {"kex", "ns\"x", "a\nb"};
  r.handler_id = "id\x7f";
  const std::string line = FormatLogLine(r, LogFormat::kJson);
  const nlohmann::json j = ParseLine(line);
  // Valid UTF-8 is kept as it is, control characters escaped.
  EXPECT_EQ(j["message"], message);
  EXPECT_EQ(j["namespace"], "ns\"x");
  EXPECT_EQ(j["name"], "a\nb");
  EXPECT_EQ(j["id"], "id\x7f");
  EXPECT_NE(line.find(R"(\u001b[31m)"), std::string::npos) << line;
  EXPECT_NE(line.find("\xc3\xbc"), std::string::npos) << line;
}

TEST(FormatLogLineTest, JsonReplacesBytesThatAreNotUtf8) {
  // A lone continuation byte, a truncated sequence, an overlong '/', 0xff.
  LogRecord r = Record(Severity::kInfo, "engine",
                       "a\x80"
                       "b\xe2\x9c c\xc0\xaf d\xff");
  r.object = {"kex", "default", "bad\xfe"};
  r.handler_id = "h\xc3";
  const nlohmann::json j = ParseLine(FormatLogLine(r, LogFormat::kJson));
  const std::string message = j["message"];
  EXPECT_EQ(message.find('\x80'), std::string::npos) << message;
  EXPECT_EQ(message.find('\xff'), std::string::npos) << message;
  EXPECT_EQ(message.substr(0, 4), "a\xef\xbf\xbd");  // U+FFFD
  EXPECT_NE(message.find(" d\xef\xbf\xbd"), std::string::npos) << message;
  EXPECT_EQ(j["name"], "bad\xef\xbf\xbd");
  EXPECT_EQ(j["id"], "h\xef\xbf\xbd");
}

// What HERALD_LOG writes to stderr while `body` runs, with the format set.
template <typename F>
std::string Captured(LogFormat format, F body) {
  const LogFormat before = GetLogFormat();
  SetLogFormat(format);
  testing::internal::CaptureStderr();
  body();
  std::string out = testing::internal::GetCapturedStderr();
  SetLogFormat(before);
  return out;
}

TEST(HeraldLogTest, WritesTheContextAttachedWithWithAndWithHandler) {
  const std::string out = Captured(LogFormat::kJson, [] {
    HERALD_LOG(WARNING, "engine")
            .With({"kopfexamples.v1.kopf.dev", "default", "kex-1"})
            .WithHandler("create_fn")
        << "handler "
        << "create_fn"
        << " failed " << 3 << " times";
    HERALD_LOG(INFO, "kube") << "no context";
  });
  const std::vector<std::string> lines =
      absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << out;
  const nlohmann::json first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["level"], "warning");
  EXPECT_EQ(first["logger"], "engine");
  EXPECT_EQ(first["message"], "handler create_fn failed 3 times");
  EXPECT_EQ(first["namespace"], "default");
  EXPECT_EQ(first["name"], "kex-1");
  EXPECT_EQ(first["resource"], "kopfexamples.v1.kopf.dev");
  EXPECT_EQ(first["id"], "create_fn");
  const nlohmann::json second = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(second["message"], "no context");
  EXPECT_FALSE(second.contains("id"));
  EXPECT_FALSE(second.contains("name"));
  // The time is RFC 3339 in UTC with microseconds.
  absl::Time t;
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full,
                              second["time"].get<std::string>(), &t, &err))
      << err;
  EXPECT_EQ(second["time"].get<std::string>().size(),
            std::string("2026-01-02T03:04:05.678901Z").size());
}

TEST(HeraldLogTest, TextModeWritesTheLinesAsBefore) {
  const std::string out = Captured(LogFormat::kText, [] {
    HERALD_LOG(WARNING, "engine")
            .With({"kopfexamples.v1.kopf.dev", "default", "kex-1"})
            .WithHandler("create_fn")
        << "handler create_fn failed";
  });
  // "2026-...Z W [engine] kopfexamples.v1.kopf.dev default/kex-1: ..."
  ASSERT_GT(out.size(), 25u);
  absl::Time t;
  std::string err;
  EXPECT_TRUE(absl::ParseTime("%Y-%m-%dT%H:%M:%E3SZ", out.substr(0, 24),
                              absl::UTCTimeZone(), &t, &err))
      << err;
  EXPECT_EQ(out.substr(24),
            " W [engine] kopfexamples.v1.kopf.dev default/kex-1: handler "
            "create_fn failed\n")
      << out;
}

TEST(HeraldLogTest, WithObjectKeysLeavesTheTextToTheMessage) {
  auto log = [] {
    HERALD_LOG(INFO, "event").WithObjectKeys({"pods.v1", "default", "p1"})
        << "ADDED pods.v1 default/p1 rv=7";
  };
  const std::string text = Captured(LogFormat::kText, log);
  ASSERT_GT(text.size(), 24u);
  EXPECT_EQ(text.substr(24), " I [event] ADDED pods.v1 default/p1 rv=7\n");
  const nlohmann::json j =
      nlohmann::json::parse(Captured(LogFormat::kJson, log));
  EXPECT_EQ(j["message"], "ADDED pods.v1 default/p1 rv=7");
  EXPECT_EQ(j["namespace"], "default");
  EXPECT_EQ(j["name"], "p1");
  EXPECT_EQ(j["resource"], "pods.v1");
}

TEST(HeraldLogTest, BelowTheMinimumNothingIsEvaluatedOrWritten) {
  const Severity before = MinLogSeverity();
  SetMinLogSeverity(Severity::kWarning);
  int evaluated = 0;
  auto count = [&evaluated] { return ++evaluated; };
  const std::string out = Captured(LogFormat::kJson, [&] {
    HERALD_LOG(INFO, "engine").WithHandler("h") << count();
    HERALD_LOG(DEBUG, "engine") << count();
  });
  SetMinLogSeverity(before);
  EXPECT_EQ(out, "");
  EXPECT_EQ(evaluated, 0);
}

}  // namespace
}  // namespace herald::runtime
