#include "server/engine/outcomes.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/runtime/proto_time.h"

namespace herald::engine {

using nlohmann::json;

namespace {

// Parses a `_json` field that must hold a JSON object (or be empty).
absl::StatusOr<json> ParseObjectField(const std::string& text,
                                      const char* field) {
  if (text.empty()) return json::object();
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is not a JSON object: ", text.substr(0, 200)));
  }
  return j;
}

// Finishes or delays a record by the status an answer counts as.
void Settle(v1::OutcomeStatus status, const std::string& message,
            absl::Duration delay, absl::Time now, ProgressRecord& rec) {
  switch (status) {
    case v1::OUTCOME_STATUS_SUCCESS:
    case v1::OUTCOME_STATUS_SKIPPED:
      rec.success = true;
      rec.stopped = now;
      rec.delayed.reset();
      rec.message.reset();
      break;
    case v1::OUTCOME_STATUS_PERMANENT_ERROR:
      rec.failure = true;
      rec.stopped = now;
      rec.delayed.reset();
      rec.message = message;
      break;
    default:
      rec.delayed = now + delay;
      rec.message = message;
      break;
  }
}

}  // namespace

Answer AnswerOf(const v1::Outcome& outcome, absl::Status malformed) {
  Answer a;
  a.status = outcome.status();
  a.message = outcome.message();
  if (outcome.has_delay())
    a.delay = runtime::FromProtoDuration(outcome.delay());
  a.children.reserve(outcome.subhandlers_size());
  for (const auto& child : outcome.subhandlers()) {
    ChildAnswer c;
    c.id = child.id();
    c.status = child.status();
    c.message = child.message();
    if (child.has_delay()) c.delay = runtime::FromProtoDuration(child.delay());
    a.children.push_back(std::move(c));
  }
  a.malformed = std::move(malformed);
  return a;
}

ParsedChanges ParseChanges(const v1::Outcome& outcome) {
  ParsedChanges out;
  if (outcome.has_changes()) {
    auto p = ParseObjectField(outcome.changes().patch_json(), "patch_json");
    auto sp = ParseObjectField(outcome.changes().status_patch_json(),
                               "status_patch_json");
    auto mp = ParseObjectField(outcome.changes().memo_patch_json(),
                               "memo_patch_json");
    out.error = !p.ok() ? p.status() : !sp.ok() ? sp.status() : mp.status();
    if (!out.error.ok()) return out;
    out.patch = std::move(*p);
    out.status_patch = std::move(*sp);
    out.memo_patch = std::move(*mp);
  }
  if (!outcome.result_json().empty()) {
    out.result = json::parse(outcome.result_json(), nullptr, false);
    if (out.result.is_discarded()) {
      out.error = absl::InvalidArgumentError(absl::StrCat(
          "result_json is not JSON: ", outcome.result_json().substr(0, 200)));
      out.result = nullptr;
    }
  }
  return out;
}

v1::OutcomeStatus ApplyErrorsMode(v1::OutcomeStatus status, ErrorsMode mode) {
  if (status != v1::OUTCOME_STATUS_UNEXPECTED_ERROR &&
      status != v1::OUTCOME_STATUS_UNSPECIFIED) {
    return status;
  }
  switch (mode) {
    case ErrorsMode::kPermanent:
      return v1::OUTCOME_STATUS_PERMANENT_ERROR;
    case ErrorsMode::kIgnored:
      return v1::OUTCOME_STATUS_SUCCESS;
    default:
      return v1::OUTCOME_STATUS_TEMPORARY_ERROR;
  }
}

bool StopAtLimits(const Handler& h, absl::Time now, ProgressRecord& rec) {
  if (!rec.started) rec.started = now;
  if (h.spec.retries && rec.retries >= static_cast<int>(*h.spec.retries)) {
    rec.failure = true;
    rec.stopped = now;
    rec.message =
        absl::StrCat("exceeded the retries limit (", *h.spec.retries, ")");
    return true;
  }
  if (h.spec.timeout) {
    const absl::Duration timeout = *h.spec.timeout;
    if (now - *rec.started >= timeout) {
      rec.failure = true;
      rec.stopped = now;
      rec.message =
          absl::StrCat("timed out after ", absl::FormatDuration(timeout));
      return true;
    }
  }
  return false;
}

Judgement RecordAnswer(const Handler& h, const Answer& answer,
                       const std::string& purpose, absl::Time now,
                       ProgressRecord& rec,
                       std::map<std::string, ProgressRecord>& child_records) {
  Judgement j;
  rec.retries += 1;
  v1::OutcomeStatus status = answer.status;
  std::string message = answer.message;
  if (!answer.malformed.ok()) {
    status = v1::OUTCOME_STATUS_UNEXPECTED_ERROR;
    message = absl::StrCat("malformed outcome: ", answer.malformed.message());
  } else if (status == v1::OUTCOME_STATUS_UNSPECIFIED) {
    status = v1::OUTCOME_STATUS_UNEXPECTED_ERROR;
    if (message.empty()) message = "the outcome's status is unspecified";
  }
  absl::Duration delay = answer.delay.value_or(h.backoff());
  if (answer.malformed.ok() && !answer.children.empty()) {
    std::set<std::string> refs(rec.subrefs.begin(), rec.subrefs.end());
    for (const ChildAnswer& child : answer.children) {
      if (!absl::StartsWith(child.id, h.id() + "/")) {
        j.warnings.push_back(absl::StrCat("sub-handler id '", child.id,
                                          "' does not start with '", h.id(),
                                          "/'; ignored"));
        continue;
      }
      refs.insert(child.id);
      ProgressRecord& cr = child_records[child.id];
      if (!cr.started) cr.started = now;
      if (cr.purpose.empty()) cr.purpose = purpose;
      cr.retries += 1;
      Settle(ApplyErrorsMode(child.status, h.spec.errors), child.message,
             child.delay.value_or(h.backoff()), now, cr);
    }
    rec.subrefs.assign(refs.begin(), refs.end());
    if (status == v1::OUTCOME_STATUS_SUCCESS) {
      // The parent is done when all its children are.
      std::vector<std::string> pending, failed;
      absl::Duration child_delay = absl::InfiniteDuration();
      for (const auto& ref : rec.subrefs) {
        const ProgressRecord& cr = child_records[ref];
        if (!cr.finished()) {
          pending.push_back(ref);
          if (cr.delayed)
            child_delay = std::min(child_delay, *cr.delayed - now);
        } else if (cr.failure) {
          failed.push_back(ref);
        }
      }
      if (!pending.empty()) {
        status = v1::OUTCOME_STATUS_TEMPORARY_ERROR;
        message = absl::StrCat("sub-handlers not done yet: ",
                               absl::StrJoin(pending, ", "));
        if (child_delay != absl::InfiniteDuration()) {
          delay = std::max(child_delay, absl::ZeroDuration());
        }
      } else if (!failed.empty()) {
        status = v1::OUTCOME_STATUS_PERMANENT_ERROR;
        message =
            absl::StrCat("sub-handlers failed: ", absl::StrJoin(failed, ", "));
      }
    }
  }
  if (status == v1::OUTCOME_STATUS_UNEXPECTED_ERROR) {
    status = ApplyErrorsMode(status, h.spec.errors);
    j.drop_result = status == v1::OUTCOME_STATUS_SUCCESS;
  }
  if (status != v1::OUTCOME_STATUS_SUCCESS &&
      status != v1::OUTCOME_STATUS_SKIPPED &&
      status != v1::OUTCOME_STATUS_PERMANENT_ERROR) {
    status = v1::OUTCOME_STATUS_TEMPORARY_ERROR;
  }
  Settle(status, message, delay, now, rec);
  j.status = status;
  return j;
}

void RecordRejectedPatch(absl::Duration backoff, absl::Time now,
                         const std::string& why, ProgressRecord& rec) {
  rec.success = false;
  rec.stopped.reset();
  rec.delayed = now + backoff;
  rec.message = absl::StrCat("patch rejected: ", why);
}

TimerJudgement JudgeTimerRun(const Handler& h, const Answer& answer) {
  TimerJudgement j;
  if (answer.malformed.ok() && answer.status == v1::OUTCOME_STATUS_SUCCESS) {
    j.status = v1::OUTCOME_STATUS_SUCCESS;
  } else if (answer.status == v1::OUTCOME_STATUS_TEMPORARY_ERROR ||
             answer.status == v1::OUTCOME_STATUS_UNEXPECTED_ERROR ||
             !answer.malformed.ok()) {
    // The next run comes after the error's delay (or the backoff).
    j.status = v1::OUTCOME_STATUS_TEMPORARY_ERROR;
    j.next = answer.delay.value_or(h.backoff());
  } else {
    j.status = answer.status;
  }
  return j;
}

}  // namespace herald::engine
