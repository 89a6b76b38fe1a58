#include "server/engine/outcomes.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace herald::engine {

using nlohmann::json;

namespace {

// Finishes or delays a record by the status an answer counts as.
void Settle(OutcomeStatus status, const std::string& message,
            absl::Duration delay, absl::Time now, ProgressRecord& rec) {
  switch (status) {
    case OutcomeStatus::kSuccess:
    case OutcomeStatus::kSkipped:
      rec.success = true;
      rec.stopped = now;
      rec.delayed.reset();
      rec.message.reset();
      break;
    case OutcomeStatus::kPermanentError:
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

OutcomeStatus ApplyErrorsMode(OutcomeStatus status, ErrorsMode mode) {
  if (status != OutcomeStatus::kUnexpectedError &&
      status != OutcomeStatus::kUnspecified) {
    return status;
  }
  switch (mode) {
    case ErrorsMode::kPermanent:
      return OutcomeStatus::kPermanentError;
    case ErrorsMode::kIgnored:
      return OutcomeStatus::kSuccess;
    default:
      return OutcomeStatus::kTemporaryError;
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
  OutcomeStatus status = answer.status;
  std::string message = answer.message;
  if (!answer.malformed.ok()) {
    status = OutcomeStatus::kUnexpectedError;
    message = absl::StrCat("malformed outcome: ", answer.malformed.message());
  } else if (status == OutcomeStatus::kUnspecified) {
    status = OutcomeStatus::kUnexpectedError;
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
    if (status == OutcomeStatus::kSuccess) {
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
        status = OutcomeStatus::kTemporaryError;
        message = absl::StrCat("sub-handlers not done yet: ",
                               absl::StrJoin(pending, ", "));
        if (child_delay != absl::InfiniteDuration()) {
          delay = std::max(child_delay, absl::ZeroDuration());
        }
      } else if (!failed.empty()) {
        status = OutcomeStatus::kPermanentError;
        message =
            absl::StrCat("sub-handlers failed: ", absl::StrJoin(failed, ", "));
      }
    }
  }
  if (status == OutcomeStatus::kUnexpectedError) {
    status = ApplyErrorsMode(status, h.spec.errors);
    j.drop_result = status == OutcomeStatus::kSuccess;
  }
  if (status != OutcomeStatus::kSuccess && status != OutcomeStatus::kSkipped &&
      status != OutcomeStatus::kPermanentError) {
    status = OutcomeStatus::kTemporaryError;
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
  // A malformed answer counts as an unexpected error; the errors mode
  // decides what an unexpected error is.
  j.status = ApplyErrorsMode(
      answer.malformed.ok() ? answer.status : OutcomeStatus::kUnexpectedError,
      h.spec.errors);
  if (j.status == OutcomeStatus::kTemporaryError) {
    // The next run comes after the error's delay (or the backoff).
    j.next = answer.delay.value_or(h.backoff());
  }
  return j;
}

}  // namespace herald::engine
