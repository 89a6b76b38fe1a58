#include "server/engine/outcomes.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/test_resources.h"

namespace herald::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

Handler MakeHandler(ErrorsMode mode = ErrorsMode::kUnspecified) {
  Handler h;
  h.spec.id = "h";
  h.spec.cause = Cause::kCreate;
  h.spec.errors = mode;
  h.spec.backoff = absl::Seconds(7);
  return h;
}

Answer AnswerWith(OutcomeStatus status, std::string message = "") {
  Answer a;
  a.status = status;
  a.message = std::move(message);
  return a;
}

struct AnswerCase {
  std::string name;
  ErrorsMode mode;
  Answer answer;
  OutcomeStatus judged;
  bool success, failure, delayed, drop_result;
  std::string message;
};

TEST(OutcomesTest, StatusesAndErrorsModesFromATable) {
  Answer malformed = AnswerWith(OutcomeStatus::kSuccess);
  malformed.malformed = absl::InvalidArgumentError("patch_json is not JSON");
  Answer delayed = AnswerWith(OutcomeStatus::kTemporaryError, "later");
  delayed.delay = absl::Seconds(3);
  const std::vector<AnswerCase> cases = {
      {"success", ErrorsMode::kUnspecified, AnswerWith(OutcomeStatus::kSuccess),
       OutcomeStatus::kSuccess, true, false, false, false, ""},
      {"skipped counts as done", ErrorsMode::kUnspecified,
       AnswerWith(OutcomeStatus::kSkipped), OutcomeStatus::kSkipped, true,
       false, false, false, ""},
      {"temporary error: retried after the backoff", ErrorsMode::kUnspecified,
       AnswerWith(OutcomeStatus::kTemporaryError, "not yet"),
       OutcomeStatus::kTemporaryError, false, false, true, false, "not yet"},
      {"temporary error with its own delay", ErrorsMode::kUnspecified, delayed,
       OutcomeStatus::kTemporaryError, false, false, true, false, "later"},
      {"permanent error", ErrorsMode::kUnspecified,
       AnswerWith(OutcomeStatus::kPermanentError, "no"),
       OutcomeStatus::kPermanentError, false, true, false, false, "no"},
      {"unexpected error, default mode: temporary", ErrorsMode::kUnspecified,
       AnswerWith(OutcomeStatus::kUnexpectedError, "boom"),
       OutcomeStatus::kTemporaryError, false, false, true, false, "boom"},
      {"unexpected error, permanent mode", ErrorsMode::kPermanent,
       AnswerWith(OutcomeStatus::kUnexpectedError, "boom"),
       OutcomeStatus::kPermanentError, false, true, false, false, "boom"},
      {"unexpected error, ignored mode: success without a result",
       ErrorsMode::kIgnored,
       AnswerWith(OutcomeStatus::kUnexpectedError, "boom"),
       OutcomeStatus::kSuccess, true, false, false, true, ""},
      {"the modes leave temporary errors alone", ErrorsMode::kIgnored,
       AnswerWith(OutcomeStatus::kTemporaryError, "wait"),
       OutcomeStatus::kTemporaryError, false, false, true, false, "wait"},
      {"unspecified status: an unexpected error", ErrorsMode::kUnspecified,
       AnswerWith(OutcomeStatus::kUnspecified), OutcomeStatus::kTemporaryError,
       false, false, true, false, "the outcome's status is unspecified"},
      {"malformed: an unexpected error naming what", ErrorsMode::kPermanent,
       malformed, OutcomeStatus::kPermanentError, false, true, false, false,
       "malformed outcome: patch_json is not JSON"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Handler h = MakeHandler(c.mode);
    ProgressRecord rec;
    rec.retries = 1;
    std::map<std::string, ProgressRecord> children;
    const Judgement j =
        RecordAnswer(h, c.answer, "create", kNow, rec, children);
    EXPECT_EQ(OutcomeStatusName(j.status), OutcomeStatusName(c.judged));
    EXPECT_EQ(rec.retries, 2);
    EXPECT_EQ(rec.success, c.success);
    EXPECT_EQ(rec.failure, c.failure);
    EXPECT_EQ(rec.delayed.has_value(), c.delayed);
    if (c.delayed) {
      EXPECT_EQ(*rec.delayed, kNow + c.answer.delay.value_or(absl::Seconds(7)));
    }
    EXPECT_EQ(rec.stopped.has_value(), c.success || c.failure);
    EXPECT_EQ(j.drop_result, c.drop_result);
    EXPECT_EQ(rec.message.value_or(""), c.message);
  }
}

ChildAnswer Child(const std::string& id, OutcomeStatus status,
                  absl::optional<absl::Duration> delay = absl::nullopt) {
  ChildAnswer c;
  c.id = id;
  c.status = status;
  c.message = id + " says so";
  c.delay = delay;
  return c;
}

TEST(OutcomesTest, AParentWaitsForItsChildren) {
  const Handler h = MakeHandler();
  ProgressRecord rec;
  std::map<std::string, ProgressRecord> children;
  Answer a = AnswerWith(OutcomeStatus::kSuccess);
  a.children = {Child("h/a", OutcomeStatus::kSuccess),
                Child("h/b", OutcomeStatus::kTemporaryError, absl::Seconds(2)),
                Child("h/c", OutcomeStatus::kTemporaryError, absl::Seconds(9)),
                Child("other/x", OutcomeStatus::kSuccess)};
  Judgement j = RecordAnswer(h, a, "create", kNow, rec, children);
  EXPECT_EQ(j.status, OutcomeStatus::kTemporaryError);
  EXPECT_THAT(rec.subrefs, ElementsAre("h/a", "h/b", "h/c"));
  EXPECT_EQ(rec.message.value_or(""), "sub-handlers not done yet: h/b, h/c");
  // Retried when the earliest child is due.
  EXPECT_EQ(*rec.delayed, kNow + absl::Seconds(2));
  EXPECT_TRUE(children.at("h/a").success);
  EXPECT_EQ(children.at("h/b").purpose, "create");
  ASSERT_EQ(j.warnings.size(), 1u);
  EXPECT_THAT(j.warnings[0], HasSubstr("'other/x' does not start with 'h/'"));
  EXPECT_EQ(children.count("other/x"), 0u);

  // The next attempt: one child fails for good, the rest succeed.
  Answer b = AnswerWith(OutcomeStatus::kSuccess);
  b.children = {Child("h/b", OutcomeStatus::kSuccess),
                Child("h/c", OutcomeStatus::kPermanentError)};
  j = RecordAnswer(h, b, "create", kNow + absl::Seconds(2), rec, children);
  EXPECT_EQ(j.status, OutcomeStatus::kPermanentError);
  EXPECT_EQ(rec.message.value_or(""), "sub-handlers failed: h/c");
  EXPECT_EQ(children.at("h/b").retries, 2);
  EXPECT_EQ(rec.retries, 2);
}

TEST(OutcomesTest, ChildrenFollowTheParentsErrorsMode) {
  const Handler h = MakeHandler(ErrorsMode::kIgnored);
  ProgressRecord rec;
  std::map<std::string, ProgressRecord> children;
  Answer a = AnswerWith(OutcomeStatus::kSuccess);
  a.children = {Child("h/a", OutcomeStatus::kUnexpectedError)};
  const Judgement j = RecordAnswer(h, a, "create", kNow, rec, children);
  EXPECT_EQ(j.status, OutcomeStatus::kSuccess);
  EXPECT_TRUE(children.at("h/a").success);
}

TEST(OutcomesTest, ALimitStopsTheNextAttempt) {
  Handler h = MakeHandler();
  h.spec.retries = 3;
  h.spec.timeout = absl::Seconds(60);
  ProgressRecord fresh;
  EXPECT_FALSE(StopAtLimits(h, kNow, fresh));
  EXPECT_EQ(*fresh.started, kNow);

  ProgressRecord spent;
  spent.retries = 3;
  EXPECT_TRUE(StopAtLimits(h, kNow, spent));
  EXPECT_TRUE(spent.failure);
  EXPECT_EQ(spent.message.value_or(""), "exceeded the retries limit (3)");

  ProgressRecord old;
  old.started = kNow - absl::Seconds(60);
  EXPECT_TRUE(StopAtLimits(h, kNow, old));
  EXPECT_EQ(old.message.value_or(""), "timed out after 1m");
  EXPECT_EQ(*old.stopped, kNow);
}

TEST(OutcomesTest, ARejectedPatchIsRetriedAfterTheBackoff) {
  ProgressRecord rec;
  rec.success = true;
  rec.stopped = kNow;
  RecordRejectedPatch(absl::Seconds(7), kNow, "spec.x: Invalid value", rec);
  EXPECT_FALSE(rec.finished());
  EXPECT_EQ(*rec.delayed, kNow + absl::Seconds(7));
  EXPECT_EQ(rec.message.value_or(""), "patch rejected: spec.x: Invalid value");
}

TEST(OutcomesTest, TimerRunsRetryErrorsAfterTheirDelay) {
  const Handler h = MakeHandler();
  EXPECT_EQ(JudgeTimerRun(h, AnswerWith(OutcomeStatus::kSuccess)).status,
            OutcomeStatus::kSuccess);
  EXPECT_FALSE(JudgeTimerRun(h, AnswerWith(OutcomeStatus::kSuccess)).next);
  const TimerJudgement unexpected =
      JudgeTimerRun(h, AnswerWith(OutcomeStatus::kUnexpectedError));
  EXPECT_EQ(unexpected.status, OutcomeStatus::kTemporaryError);
  EXPECT_EQ(*unexpected.next, absl::Seconds(7));
  Answer delayed = AnswerWith(OutcomeStatus::kTemporaryError);
  delayed.delay = absl::Seconds(1);
  EXPECT_EQ(*JudgeTimerRun(h, delayed).next, absl::Seconds(1));
  EXPECT_EQ(JudgeTimerRun(h, AnswerWith(OutcomeStatus::kPermanentError)).status,
            OutcomeStatus::kPermanentError);
  Answer malformed = AnswerWith(OutcomeStatus::kSuccess);
  malformed.malformed = absl::InvalidArgumentError("bad");
  EXPECT_EQ(JudgeTimerRun(h, malformed).status, OutcomeStatus::kTemporaryError);
}

TEST(OutcomesTest, TimerRunsFollowTheErrorsMode) {
  const Handler permanent = MakeHandler(ErrorsMode::kPermanent);
  const TimerJudgement failed =
      JudgeTimerRun(permanent, AnswerWith(OutcomeStatus::kUnexpectedError));
  EXPECT_EQ(failed.status, OutcomeStatus::kPermanentError);
  EXPECT_FALSE(failed.next);  // At the interval.
  Answer malformed = AnswerWith(OutcomeStatus::kSuccess);
  malformed.malformed = absl::InvalidArgumentError("bad");
  EXPECT_EQ(JudgeTimerRun(permanent, malformed).status,
            OutcomeStatus::kPermanentError);
  // A temporary error stays temporary whatever the mode.
  EXPECT_EQ(JudgeTimerRun(permanent, AnswerWith(OutcomeStatus::kTemporaryError))
                .status,
            OutcomeStatus::kTemporaryError);
  const Handler ignored = MakeHandler(ErrorsMode::kIgnored);
  EXPECT_EQ(JudgeTimerRun(ignored, AnswerWith(OutcomeStatus::kUnexpectedError))
                .status,
            OutcomeStatus::kSuccess);
}

}  // namespace
}  // namespace herald::engine
