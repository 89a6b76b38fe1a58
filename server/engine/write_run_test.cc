#include "server/engine/write_run.h"

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/engine/test_resources.h"

namespace herald::engine {
namespace {

using nlohmann::json;

// Answers each PATCH with the next scripted reply and records what it got.
class ScriptedWriter : public ObjectWriter {
 public:
  struct Call {
    std::string patch;
    bool status;
  };
  void Patch(const kube::ResourceInfo&, const cache::ObjectKey&,
             kube::PatchType, std::string patch, bool status,
             WriteDone done) override {
    calls.push_back({patch, status});
    absl::StatusOr<std::string> reply = replies.front();
    replies.pop_front();
    done(std::move(reply));
  }
  void PostEvent(kube::InvolvedObject, kube::EventKind, std::string,
                 std::string) override {}
  std::deque<absl::StatusOr<std::string>> replies;
  std::vector<Call> calls;
};

absl::Status Http(int code) {
  return kube::StatusFromResponse(
      kube::HttpResponse{code, R"({"kind":"Status","message":"no"})", ""},
      "PATCH");
}

class WriteRunTest : public ::testing::Test {
 protected:
  WriteAnswer Run(const json& patch, const json& status_patch) {
    WriteAnswer out;
    int answers = 0;
    RunPatches(&writer_, resource_, {"ns", "x"}, patch, status_patch,
               [&](WriteAnswer a) {
                 out = std::move(a);
                 ++answers;
               });
    EXPECT_EQ(answers, 1);
    return out;
  }
  ScriptedWriter writer_;
  std::shared_ptr<const kube::ResourceInfo> resource_ =
      std::make_shared<const kube::ResourceInfo>(testing::Kex());
};

TEST_F(WriteRunTest, TheObjectThenItsStatus) {
  writer_.replies = {std::string("{\"rv\":1}"), std::string("{\"rv\":2}")};
  const WriteAnswer a = Run(json{{"metadata", {{"labels", {{"a", "b"}}}}}},
                            json{{"h", {{"ok", true}}}});
  EXPECT_EQ(a.kind, WriteAnswer::Kind::kApplied);
  ASSERT_EQ(writer_.calls.size(), 2u);
  EXPECT_FALSE(writer_.calls[0].status);
  EXPECT_EQ(writer_.calls[1].patch, R"({"status":{"h":{"ok":true}}})");
  EXPECT_TRUE(writer_.calls[1].status);
  EXPECT_EQ(a.bodies, (std::vector<std::string>{"{\"rv\":1}", "{\"rv\":2}"}));
}

TEST_F(WriteRunTest, EmptyPatchesAreNotSent) {
  writer_.replies = {std::string("{}")};
  EXPECT_EQ(Run(json::object(), json{{"h", 1}}).kind,
            WriteAnswer::Kind::kApplied);
  EXPECT_EQ(writer_.calls.size(), 1u);
  EXPECT_TRUE(writer_.calls[0].status);
  writer_.calls.clear();
  EXPECT_TRUE(Run(json::object(), json::object()).bodies.empty());
  EXPECT_TRUE(writer_.calls.empty());
}

TEST_F(WriteRunTest, AFailedStatusPatchDoesNotFailTheRun) {
  writer_.replies = {std::string("{}"), Http(500)};
  const WriteAnswer a = Run(json{{"a", 1}}, json{{"h", 1}});
  EXPECT_EQ(a.kind, WriteAnswer::Kind::kApplied);
  EXPECT_EQ(a.bodies.size(), 1u);
}

TEST_F(WriteRunTest, TheMergePatchsFailureStopsTheRun) {
  const std::vector<std::pair<int, WriteAnswer::Kind>> cases = {
      {404, WriteAnswer::Kind::kGone},     {422, WriteAnswer::Kind::kRejected},
      {400, WriteAnswer::Kind::kRejected}, {409, WriteAnswer::Kind::kFailed},
      {500, WriteAnswer::Kind::kFailed},
  };
  for (const auto& [code, kind] : cases) {
    SCOPED_TRACE(code);
    writer_.calls.clear();
    writer_.replies = {Http(code)};
    const WriteAnswer a = Run(json{{"a", 1}}, json{{"h", 1}});
    EXPECT_EQ(a.kind, kind);
    EXPECT_EQ(kube::HttpStatusOf(a.status), code);
    // The status is not written after a failed merge PATCH.
    EXPECT_EQ(writer_.calls.size(), 1u);
  }
}

}  // namespace
}  // namespace herald::engine
