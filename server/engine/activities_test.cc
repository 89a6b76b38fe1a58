#include "server/engine/activities.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/test_resources.h"
#include "server/session/wire.h"

namespace herald::engine {
namespace {

using ::testing::HasSubstr;

class Sink : public session::WireSink {
 public:
  Sink() : WireSink(1, 16 << 20, "test") {}
  void Write(v1::ConnectResponse m) override {
    if (m.has_delivery()) sent.push_back(m.delivery());
  }
  std::vector<v1::Delivery> sent;
};

// No writes happen here: activities are about no object.
class NoWriter : public ObjectWriter {
 public:
  void Patch(const kube::ResourceInfo&, const cache::ObjectKey&,
             kube::PatchType, std::string, bool, WriteDone) override {
    ADD_FAILURE() << "an activity wrote to an object";
  }
  void PostEvent(kube::InvolvedObject, kube::EventKind, std::string,
                 std::string) override {}
};

class ActivitiesTest : public ::testing::Test {
 protected:
  // Activities are about no resource.
  void Add(const std::string& id, Cause cause) {
    HandlerSpec spec = testing::Spec(id, cause);
    spec.resource.clear();
    const absl::Status added = registry_.Add(spec, kube::ResourceInfo());
    ASSERT_TRUE(added.ok()) << added;
  }
  void Serve(const std::vector<std::string>& ids) {
    StreamInfo info;
    info.stream = 1;
    info.credits = 10;
    info.handler_ids = ids;
    dispatcher_.AddStream(info, &sink_);
  }
  void Answer(const std::string& delivery_id, v1::OutcomeStatus status,
              const std::string& result_json = "") {
    v1::Outcome o;
    o.set_delivery_id(delivery_id);
    o.set_status(status);
    o.set_result_json(result_json);
    StreamError code;
    ASSERT_TRUE(dispatcher_
                    .OnOutcome(1,
                               session::OutcomeFromWire(
                                   o, *session::ParseDeliveryId(delivery_id)),
                               &code)
                    .ok());
    loop_.RunUntilIdle();
  }

  runtime::FakeClock clock_;
  runtime::EventLoop loop_{&clock_};
  Registry registry_;
  Dispatcher dispatcher_{&loop_};
  NoWriter writer_;
  Processor processor_{&loop_, &registry_, &dispatcher_, &writer_};
  std::vector<std::string> fatal_;
  Activities activities_{&loop_, &registry_, &dispatcher_, &processor_,
                         [this](const std::string& m) { fatal_.push_back(m); }};
  Sink sink_;
};

TEST_F(ActivitiesTest, StartupHandlersRunInTurnAndRetryUntilTheyAreDone) {
  Add("first", Cause::kStartup);
  Add("second", Cause::kStartup);
  Serve({"first", "second"});
  bool then = false;
  activities_.RunStartup({"first", "second"}, [&] { then = true; });
  ASSERT_EQ(sink_.sent.size(), 1u);
  EXPECT_EQ(sink_.sent[0].handler_id(), "first");
  // A temporary error: the same handler again after its backoff (60 s).
  Answer(sink_.sent[0].delivery_id(), v1::OUTCOME_STATUS_TEMPORARY_ERROR);
  EXPECT_EQ(sink_.sent.size(), 1u);
  clock_.Advance(absl::Seconds(60));
  loop_.RunUntilIdle();
  ASSERT_EQ(sink_.sent.size(), 2u);
  EXPECT_EQ(sink_.sent[1].handler_id(), "first");
  EXPECT_EQ(sink_.sent[1].retry(), 1u);
  Answer(sink_.sent[1].delivery_id(), v1::OUTCOME_STATUS_SUCCESS);
  ASSERT_EQ(sink_.sent.size(), 3u);
  EXPECT_EQ(sink_.sent[2].handler_id(), "second");
  EXPECT_FALSE(then);
  Answer(sink_.sent[2].delivery_id(), v1::OUTCOME_STATUS_SUCCESS);
  EXPECT_TRUE(then);
  EXPECT_TRUE(activities_.StartupDone("first"));
  EXPECT_EQ(processor_.stats().at("first").temporary_failures, 1u);
  EXPECT_EQ(processor_.stats().at("first").successes, 1u);
  EXPECT_TRUE(fatal_.empty());
}

TEST_F(ActivitiesTest, APermanentStartupFailureIsFatal) {
  Add("first", Cause::kStartup);
  Serve({"first"});
  bool then = false;
  activities_.RunStartup({"first"}, [&] { then = true; });
  Answer(sink_.sent[0].delivery_id(), v1::OUTCOME_STATUS_PERMANENT_ERROR);
  EXPECT_FALSE(then);
  ASSERT_EQ(fatal_.size(), 1u);
  EXPECT_THAT(fatal_[0], HasSubstr("startup handler 'first' failed"));
}

TEST_F(ActivitiesTest, CleanupsAnswerOnceAllHaveAnswered) {
  Add("served", Cause::kCleanup);
  Add("unserved", Cause::kCleanup);
  Serve({"served"});
  int done = 0;
  EXPECT_EQ(activities_.RunCleanups([&] { ++done; }), 1);
  EXPECT_EQ(done, 0);
  ASSERT_EQ(sink_.sent.size(), 1u);
  Answer(sink_.sent[0].delivery_id(), v1::OUTCOME_STATUS_TEMPORARY_ERROR);
  EXPECT_EQ(done, 1);
  // None to run: done at once.
  Registry empty;
  Activities none(&loop_, &empty, &dispatcher_, &processor_, nullptr);
  int none_done = 0;
  EXPECT_EQ(none.RunCleanups([&] { ++none_done; }), 0);
  EXPECT_EQ(none_done, 1);
}

TEST_F(ActivitiesTest, ProbesCollectResultsAndGiveUpOnTheSilentOnes) {
  Add("ok", Cause::kProbe);
  Add("silent", Cause::kProbe);
  Add("unserved", Cause::kProbe);
  Serve({"ok", "silent"});
  auto run = std::make_shared<Activities::ProbeRun>();
  int answered = 0;
  activities_.RunProbes(run, [&] { ++answered; });
  ASSERT_EQ(sink_.sent.size(), 2u);
  Answer(sink_.sent[0].delivery_id(), v1::OUTCOME_STATUS_SUCCESS,
         R"({"up": true})");
  EXPECT_EQ(answered, 0);
  activities_.AbandonProbes(*run, absl::Seconds(2));
  EXPECT_FALSE(run->ok);
  EXPECT_EQ(run->results["ok"]["up"], true);
  EXPECT_EQ(run->results["unserved"]["error"], "no process serves it");
  EXPECT_EQ(run->results["silent"]["error"], "no answer within 2s");
  // The abandoned delivery no longer waits for a credit.
  EXPECT_TRUE(dispatcher_.Cancel(*session::ParseDeliveryId(
                  sink_.sent[1].delivery_id())) == false);
}

}  // namespace
}  // namespace herald::engine
