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

Answer AnswerWith(v1::OutcomeStatus status, std::string message = "") {
  Answer a;
  a.status = status;
  a.message = std::move(message);
  return a;
}

struct AnswerCase {
  std::string name;
  ErrorsMode mode;
  Answer answer;
  v1::OutcomeStatus judged;
  bool success, failure, delayed, drop_result;
  std::string message;
};

TEST(OutcomesTest, StatusesAndErrorsModesFromATable) {
  Answer malformed = AnswerWith(v1::OUTCOME_STATUS_SUCCESS);
  malformed.malformed = absl::InvalidArgumentError("patch_json is not JSON");
  Answer delayed = AnswerWith(v1::OUTCOME_STATUS_TEMPORARY_ERROR, "later");
  delayed.delay = absl::Seconds(3);
  const std::vector<AnswerCase> cases = {
      {"success", ErrorsMode::kUnspecified,
       AnswerWith(v1::OUTCOME_STATUS_SUCCESS), v1::OUTCOME_STATUS_SUCCESS, true,
       false, false, false, ""},
      {"skipped counts as done", ErrorsMode::kUnspecified,
       AnswerWith(v1::OUTCOME_STATUS_SKIPPED), v1::OUTCOME_STATUS_SKIPPED, true,
       false, false, false, ""},
      {"temporary error: retried after the backoff", ErrorsMode::kUnspecified,
       AnswerWith(v1::OUTCOME_STATUS_TEMPORARY_ERROR, "not yet"),
       v1::OUTCOME_STATUS_TEMPORARY_ERROR, false, false, true, false,
       "not yet"},
      {"temporary error with its own delay", ErrorsMode::kUnspecified, delayed,
       v1::OUTCOME_STATUS_TEMPORARY_ERROR, false, false, true, false, "later"},
      {"permanent error", ErrorsMode::kUnspecified,
       AnswerWith(v1::OUTCOME_STATUS_PERMANENT_ERROR, "no"),
       v1::OUTCOME_STATUS_PERMANENT_ERROR, false, true, false, false, "no"},
      {"unexpected error, default mode: temporary", ErrorsMode::kUnspecified,
       AnswerWith(v1::OUTCOME_STATUS_UNEXPECTED_ERROR, "boom"),
       v1::OUTCOME_STATUS_TEMPORARY_ERROR, false, false, true, false, "boom"},
      {"unexpected error, permanent mode", ErrorsMode::kPermanent,
       AnswerWith(v1::OUTCOME_STATUS_UNEXPECTED_ERROR, "boom"),
       v1::OUTCOME_STATUS_PERMANENT_ERROR, false, true, false, false, "boom"},
      {"unexpected error, ignored mode: success without a result",
       ErrorsMode::kIgnored,
       AnswerWith(v1::OUTCOME_STATUS_UNEXPECTED_ERROR, "boom"),
       v1::OUTCOME_STATUS_SUCCESS, true, false, false, true, ""},
      {"the modes leave temporary errors alone", ErrorsMode::kIgnored,
       AnswerWith(v1::OUTCOME_STATUS_TEMPORARY_ERROR, "wait"),
       v1::OUTCOME_STATUS_TEMPORARY_ERROR, false, false, true, false, "wait"},
      {"unspecified status: an unexpected error", ErrorsMode::kUnspecified,
       AnswerWith(v1::OUTCOME_STATUS_UNSPECIFIED),
       v1::OUTCOME_STATUS_TEMPORARY_ERROR, false, false, true, false,
       "the outcome's status is unspecified"},
      {"malformed: an unexpected error naming what", ErrorsMode::kPermanent,
       malformed, v1::OUTCOME_STATUS_PERMANENT_ERROR, false, true, false, false,
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
    EXPECT_EQ(v1::OutcomeStatus_Name(j.status),
              v1::OutcomeStatus_Name(c.judged));
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

ChildAnswer Child(const std::string& id, v1::OutcomeStatus status,
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
  Answer a = AnswerWith(v1::OUTCOME_STATUS_SUCCESS);
  a.children = {
      Child("h/a", v1::OUTCOME_STATUS_SUCCESS),
      Child("h/b", v1::OUTCOME_STATUS_TEMPORARY_ERROR, absl::Seconds(2)),
      Child("h/c", v1::OUTCOME_STATUS_TEMPORARY_ERROR, absl::Seconds(9)),
      Child("other/x", v1::OUTCOME_STATUS_SUCCESS)};
  Judgement j = RecordAnswer(h, a, "create", kNow, rec, children);
  EXPECT_EQ(j.status, v1::OUTCOME_STATUS_TEMPORARY_ERROR);
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
  Answer b = AnswerWith(v1::OUTCOME_STATUS_SUCCESS);
  b.children = {Child("h/b", v1::OUTCOME_STATUS_SUCCESS),
                Child("h/c", v1::OUTCOME_STATUS_PERMANENT_ERROR)};
  j = RecordAnswer(h, b, "create", kNow + absl::Seconds(2), rec, children);
  EXPECT_EQ(j.status, v1::OUTCOME_STATUS_PERMANENT_ERROR);
  EXPECT_EQ(rec.message.value_or(""), "sub-handlers failed: h/c");
  EXPECT_EQ(children.at("h/b").retries, 2);
  EXPECT_EQ(rec.retries, 2);
}

TEST(OutcomesTest, ChildrenFollowTheParentsErrorsMode) {
  const Handler h = MakeHandler(ErrorsMode::kIgnored);
  ProgressRecord rec;
  std::map<std::string, ProgressRecord> children;
  Answer a = AnswerWith(v1::OUTCOME_STATUS_SUCCESS);
  a.children = {Child("h/a", v1::OUTCOME_STATUS_UNEXPECTED_ERROR)};
  const Judgement j = RecordAnswer(h, a, "create", kNow, rec, children);
  EXPECT_EQ(j.status, v1::OUTCOME_STATUS_SUCCESS);
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
  EXPECT_EQ(JudgeTimerRun(h, AnswerWith(v1::OUTCOME_STATUS_SUCCESS)).status,
            v1::OUTCOME_STATUS_SUCCESS);
  EXPECT_FALSE(JudgeTimerRun(h, AnswerWith(v1::OUTCOME_STATUS_SUCCESS)).next);
  const TimerJudgement unexpected =
      JudgeTimerRun(h, AnswerWith(v1::OUTCOME_STATUS_UNEXPECTED_ERROR));
  EXPECT_EQ(unexpected.status, v1::OUTCOME_STATUS_TEMPORARY_ERROR);
  EXPECT_EQ(*unexpected.next, absl::Seconds(7));
  Answer delayed = AnswerWith(v1::OUTCOME_STATUS_TEMPORARY_ERROR);
  delayed.delay = absl::Seconds(1);
  EXPECT_EQ(*JudgeTimerRun(h, delayed).next, absl::Seconds(1));
  EXPECT_EQ(
      JudgeTimerRun(h, AnswerWith(v1::OUTCOME_STATUS_PERMANENT_ERROR)).status,
      v1::OUTCOME_STATUS_PERMANENT_ERROR);
  Answer malformed = AnswerWith(v1::OUTCOME_STATUS_SUCCESS);
  malformed.malformed = absl::InvalidArgumentError("bad");
  EXPECT_EQ(JudgeTimerRun(h, malformed).status,
            v1::OUTCOME_STATUS_TEMPORARY_ERROR);
}

TEST(OutcomesTest, ChangesMustBeJsonObjects) {
  v1::Outcome o;
  o.mutable_changes()->set_patch_json(R"({"spec":{"a":1}})");
  o.set_result_json(R"({"message":"hi"})");
  ParsedChanges ok = ParseChanges(o);
  ASSERT_TRUE(ok.error.ok()) << ok.error;
  EXPECT_EQ(ok.patch["spec"]["a"], 1);
  EXPECT_EQ(ok.result["message"], "hi");

  o.mutable_changes()->set_status_patch_json("[1]");
  EXPECT_THAT(std::string(ParseChanges(o).error.message()),
              HasSubstr("status_patch_json is not a JSON object: [1]"));
  o.mutable_changes()->clear_status_patch_json();
  o.set_result_json("{oops");
  EXPECT_THAT(std::string(ParseChanges(o).error.message()),
              HasSubstr("result_json is not JSON"));
}

}  // namespace
}  // namespace herald::engine
