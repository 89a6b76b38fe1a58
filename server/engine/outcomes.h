// Kopf's outcome semantics as pure functions: how a handler's answer to one
// delivery, or a limit reached before an attempt, changes its progress
// record and its sub-handlers' records. The errors modes (temporary,
// permanent, ignored) are applied here and nowhere else.
//
// Nothing here delivers, writes or logs; the time is an argument.
#ifndef HERALD_SERVER_ENGINE_OUTCOMES_H_
#define HERALD_SERVER_ENGINE_OUTCOMES_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "nlohmann/json.hpp"
#include "server/engine/delivery.h"
#include "server/engine/progress.h"
#include "server/engine/registry.h"

namespace herald::engine {

// A handler's answer to one delivery is its Outcome as the session parsed
// it (delivery.h); the functions here read its status, message, delay,
// sub-handlers' outcomes and whether it was malformed.
using Answer = Outcome;
using ChildAnswer = ChildOutcome;

// The status an answer counts as under the handler's errors mode: an
// unexpected error, or an unspecified status, is retried (temporary),
// permanent, or ignored (success). Other statuses are kept.
OutcomeStatus ApplyErrorsMode(OutcomeStatus status, ErrorsMode mode);

// Checked before an attempt: when the handler's retries or timeout limit is
// reached, the record is finished as failed and the message says which;
// otherwise nothing changes. Returns true when the limit stopped it.
bool StopAtLimits(const Handler& h, absl::Time now, ProgressRecord& rec);

// What recording an answer decided.
struct Judgement {
  // SUCCESS or SKIPPED (the record succeeded), PERMANENT_ERROR (it failed),
  // or TEMPORARY_ERROR (it is delayed for another attempt).
  OutcomeStatus status = OutcomeStatus::kUnspecified;
  // The handler's result is not stored: the errors mode turned an error
  // into success.
  bool drop_result = false;
  // Parts of the answer that were ignored, each a sentence to log.
  std::vector<std::string> warnings;
};

// Records one attempt's answer in the handler's record and its children's:
// the attempt counts, the sub-handlers' answers go into their records (a
// parent succeeds when all of its children have, fails when one failed, and
// waits for the earliest delayed one otherwise), and the errors mode
// applies.
Judgement RecordAnswer(const Handler& h, const Answer& answer,
                       const std::string& purpose, absl::Time now,
                       ProgressRecord& rec,
                       std::map<std::string, ProgressRecord>& child_records);

// A handler's patch that the API server rejected: the handler runs again
// after its backoff, with the rejection as its message.
void RecordRejectedPatch(absl::Duration backoff, absl::Time now,
                         const std::string& why, ProgressRecord& rec);

// A timer's run: when it runs next after this answer. `interval` is the
// timer's own; errors retry after the answer's delay or the backoff.
struct TimerJudgement {
  OutcomeStatus status = OutcomeStatus::kUnspecified;
  // Set when the next run is not at the timer's interval.
  absl::optional<absl::Duration> next;
};
TimerJudgement JudgeTimerRun(const Handler& h, const Answer& answer);

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_OUTCOMES_H_
