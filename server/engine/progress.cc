#include "server/engine/progress.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace herald::engine {
namespace {

absl::Status Bad(absl::string_view what, absl::string_view value) {
  return absl::InvalidArgumentError(
      absl::StrCat("progress record: ", what, ": '", value, "'"));
}

}  // namespace

std::string FormatKopfTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6S+00:00", t, absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseKopfTime(absl::string_view s) {
  std::string text(s);
  if (text.size() < 19) return Bad("bad timestamp", s);
  // Split off the zone: "Z", "+hh:mm", "-hh:mm", or nothing (UTC).
  int offset_seconds = 0;
  std::string base = text;
  if (!text.empty() && (text.back() == 'Z' || text.back() == 'z')) {
    base = text.substr(0, text.size() - 1);
  } else if (text.size() >= 25 &&
             (text[text.size() - 6] == '+' || text[text.size() - 6] == '-') &&
             text[text.size() - 3] == ':') {
    int hh = 0, mm = 0;
    if (!absl::SimpleAtoi(text.substr(text.size() - 5, 2), &hh) ||
        !absl::SimpleAtoi(text.substr(text.size() - 2, 2), &mm)) {
      return Bad("bad timestamp offset", s);
    }
    offset_seconds =
        (hh * 3600 + mm * 60) * (text[text.size() - 6] == '-' ? -1 : 1);
    base = text.substr(0, text.size() - 6);
  }
  absl::Time t;
  std::string err;
  if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*S", base, absl::UTCTimeZone(), &t,
                       &err)) {
    return Bad("bad timestamp", s);
  }
  return t - absl::Seconds(offset_seconds);
}

std::string EncodeProgress(const ProgressRecord& r) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (r.started) j["started"] = FormatKopfTime(*r.started);
  if (r.stopped) j["stopped"] = FormatKopfTime(*r.stopped);
  if (r.delayed) j["delayed"] = FormatKopfTime(*r.delayed);
  if (!r.purpose.empty()) j["purpose"] = r.purpose;
  j["retries"] = r.retries;
  j["success"] = r.success;
  j["failure"] = r.failure;
  if (r.message) j["message"] = *r.message;
  if (!r.subrefs.empty()) {
    std::vector<std::string> sorted = r.subrefs;
    std::sort(sorted.begin(), sorted.end());
    j["subrefs"] = sorted;
  }
  return j.dump();
}

absl::StatusOr<ProgressRecord> DecodeProgress(absl::string_view text) {
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (!j.is_object()) return Bad("not a JSON object", text.substr(0, 100));
  ProgressRecord r;
  for (const char* key : {"started", "stopped", "delayed"}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_string()) return Bad(key, it->dump());
    auto t = ParseKopfTime(it->get<std::string>());
    if (!t.ok()) return t.status();
    if (std::string(key) == "started") r.started = *t;
    if (std::string(key) == "stopped") r.stopped = *t;
    if (std::string(key) == "delayed") r.delayed = *t;
  }
  if (j.contains("purpose") && j["purpose"].is_string())
    r.purpose = j["purpose"];
  if (j.contains("retries") && j["retries"].is_number_integer()) {
    r.retries = j["retries"];
  }
  if (j.contains("success") && j["success"].is_boolean())
    r.success = j["success"];
  if (j.contains("failure") && j["failure"].is_boolean())
    r.failure = j["failure"];
  if (j.contains("message") && j["message"].is_string()) {
    r.message = j["message"].get<std::string>();
  }
  if (j.contains("subrefs") && j["subrefs"].is_array()) {
    for (const auto& s : j["subrefs"]) {
      if (s.is_string()) r.subrefs.push_back(s);
    }
  }
  return r;
}

}  // namespace herald::engine
