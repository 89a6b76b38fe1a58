#include "server/kube/api_client.h"

#include <algorithm>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/runtime/logging.h"

namespace herald::kube {
namespace {

constexpr char kHttpStatusPayload[] = "herald.dev/http-status";
constexpr char kRetryAfterPayload[] = "herald.dev/retry-after";
// A server asking for more than this is asked again sooner.
constexpr int kMaxRetryAfterSeconds = 600;

absl::optional<absl::Duration> ParseRetryAfter(const std::string& value) {
  int seconds = 0;
  if (value.empty() || !absl::SimpleAtoi(value, &seconds) || seconds < 0) {
    return absl::nullopt;
  }
  return absl::Seconds(std::min(seconds, kMaxRetryAfterSeconds));
}

absl::StatusCode CodeFor(int http) {
  switch (http) {
    case 400:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 409:
      return absl::StatusCode::kAborted;
    case 410:
      return absl::StatusCode::kOutOfRange;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    default:
      return http >= 500 ? absl::StatusCode::kUnavailable
                         : absl::StatusCode::kUnknown;
  }
}

}  // namespace

int HttpStatusOf(const absl::Status& status) {
  auto payload = status.GetPayload(kHttpStatusPayload);
  int code = 0;
  if (payload && absl::SimpleAtoi(std::string(*payload), &code)) return code;
  return 0;
}

std::string ExplainFailure(const absl::Status& status) {
  switch (HttpStatusOf(status)) {
    case 401:
      return absl::StrCat(
          "the API server refused the credentials (check the kubeconfig's "
          "user: token, token file or client certificate): ",
          status.message());
    case 403:
      return absl::StrCat(
          "access is forbidden (the user lacks the RBAC permission): ",
          status.message());
    default:
      return std::string(status.message());
  }
}

absl::Status StatusFromResponse(const HttpResponse& response,
                                absl::string_view what) {
  std::string message;
  absl::StatusCode code = CodeFor(response.status);
  // The API server answers errors with a Status object; keep its message.
  auto parsed = nlohmann::json::parse(response.body, nullptr, false);
  if (parsed.is_object() && parsed.value("kind", "") == "Status") {
    message = parsed.value("message", "");
    // The specifics (which field is invalid) are in details.causes.
    auto details = parsed.find("details");
    if (details != parsed.end() && details->is_object() &&
        details->contains("causes") && (*details)["causes"].is_array()) {
      for (const auto& cause : (*details)["causes"]) {
        if (!cause.is_object()) continue;
        std::string field = cause.value("field", "");
        std::string text = cause.value("message", "");
        if (text.empty() || absl::StrContains(message, text)) continue;
        absl::StrAppend(&message, "; ", field.empty() ? "" : field + ": ",
                        text);
      }
    }
    if (response.status == 409 &&
        parsed.value("reason", "") == "AlreadyExists") {
      code = absl::StatusCode::kAlreadyExists;
    }
  }
  if (message.empty()) message = response.body.substr(0, 1024);
  absl::Status st(
      code, absl::StrCat(what, ": HTTP ", response.status, ": ", message));
  st.SetPayload(kHttpStatusPayload, absl::Cord(absl::StrCat(response.status)));
  if (!response.retry_after.empty()) {
    st.SetPayload(kRetryAfterPayload, absl::Cord(response.retry_after));
  }
  return st;
}

absl::optional<absl::Duration> RetryAfterOf(const absl::Status& status) {
  auto payload = status.GetPayload(kRetryAfterPayload);
  if (!payload) return absl::nullopt;
  return ParseRetryAfter(std::string(*payload));
}

absl::optional<absl::Duration> RetryDelay(
    const absl::StatusOr<HttpResponse>& result, runtime::Backoff& backoff) {
  if (!result.ok()) {
    const auto code = result.status().code();
    if (code == absl::StatusCode::kUnavailable ||
        code == absl::StatusCode::kDeadlineExceeded) {
      return backoff.Next();
    }
    return absl::nullopt;
  }
  const int s = result->status;
  if (s == 429 || s >= 500) {
    absl::Duration d = backoff.Next();
    if (auto ra = ParseRetryAfter(result->retry_after)) d = *ra;
    return d;
  }
  return absl::nullopt;
}

ApiClient::ApiClient(std::unique_ptr<HttpClient> http, Options options)
    : http_(std::move(http)),
      options_(options),
      limiter_(options.qps, options.burst, options.clock) {}

absl::StatusOr<std::string> ApiClient::Request(const HttpRequest& request,
                                               int max_attempts) {
  if (max_attempts <= 0) max_attempts = options_.max_attempts;
  runtime::Backoff backoff;
  const std::string what = absl::StrCat(request.method, " ", request.target);
  for (int attempt = 1;; ++attempt) {
    limiter_.Acquire();
    WriteGate* gate = request.method == "GET" ? nullptr : options_.write_gate;
    if (gate != nullptr) {
      if (absl::Status open = gate->Enter(what); !open.ok()) return open;
    }
    absl::StatusOr<HttpResponse> result = http_->Send(request);
    if (gate != nullptr) gate->Exit();
    if (result.ok() && result->status >= 200 && result->status < 300) {
      return std::move(result->body);
    }
    absl::optional<absl::Duration> delay = RetryDelay(result, backoff);
    if (!delay || attempt >= max_attempts) {
      if (!result.ok()) return result.status();
      return StatusFromResponse(*result, what);
    }
    HERALD_LOG(WARNING, "kube")
        << what << " failed ("
        << (result.ok() ? absl::StrCat("HTTP ", result->status)
                        : result.status().ToString())
        << "); retry " << attempt << " in " << absl::FormatDuration(*delay);
    options_.clock->SleepFor(*delay);
  }
}

absl::StatusOr<std::string> ApiClient::Get(const std::string& target,
                                           int max_attempts) {
  HttpRequest r;
  r.target = target;
  return Request(r, max_attempts);
}

absl::StatusOr<std::string> ApiClient::Create(
    const std::string& collection_path, const std::string& body) {
  HttpRequest r;
  r.method = "POST";
  r.target = collection_path;
  r.body = body;
  return Request(r);
}

absl::StatusOr<std::string> ApiClient::Patch(const std::string& object_path,
                                             PatchType type,
                                             const std::string& patch) {
  HttpRequest r;
  r.method = "PATCH";
  r.target = object_path;
  r.body = patch;
  switch (type) {
    case PatchType::kMerge:
      r.content_type = "application/merge-patch+json";
      break;
    case PatchType::kJson:
      r.content_type = "application/json-patch+json";
      break;
    case PatchType::kStrategicMerge:
      r.content_type = "application/strategic-merge-patch+json";
      break;
    case PatchType::kApply:
      r.content_type = "application/apply-patch+yaml";
      break;
  }
  return Request(r);
}

absl::StatusOr<std::string> ApiClient::Delete(const std::string& object_path) {
  HttpRequest r;
  r.method = "DELETE";
  r.target = object_path;
  return Request(r);
}

}  // namespace herald::kube
