#include "server/engine/writes.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/causes.h"

namespace herald::engine {
namespace {

using nlohmann::json;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

json Body() {
  return json{{"metadata",
               {{"name", "x"},
                {"annotations", {{"herald.dev/create", "{\"retries\":1}"}}}}},
              {"spec", {{"a", 1}}}};
}

TEST(WritesTest, UnfinishedHandlersStoreTheirProgress) {
  AnnotationKeys keys("herald.dev", false);
  std::map<std::string, ProgressRecord> records, children;
  records["create"].retries = 2;
  records["create"].delayed = kNow + absl::Seconds(5);
  records["other"].success = true;
  const json essence = {{"spec", {{"a", 1}}}};
  CycleResult cycle{Cause::kCreate, &records, &children, &essence};
  const WritePlan plan =
      PlanCycleWrites(Body(), keys, cycle, json{{"spec", {{"b", 2}}}},
                      json{{"create", "result"}}, 1024);
  EXPECT_FALSE(plan.all_done);
  EXPECT_FALSE(plan.remove_finalizer);
  const json& ann = plan.patch["metadata"]["annotations"];
  EXPECT_EQ(ann["herald.dev/create"], EncodeProgress(records["create"]));
  EXPECT_EQ(ann["herald.dev/other"], EncodeProgress(records["other"]));
  EXPECT_FALSE(ann.contains("herald.dev/last-handled-configuration"));
  EXPECT_EQ(ann["herald.dev/kopf-managed"], "yes");
  // The handlers' own patches ride along.
  EXPECT_EQ(plan.patch["spec"]["b"], 2);
  EXPECT_EQ(plan.status_patch["create"], "result");
  EXPECT_EQ(plan.large_base, WritePlan::LargeBase::kKeep);
}

TEST(WritesTest, DoneHandlersLeaveTheDiffBaseAndDeleteTheirRecords) {
  AnnotationKeys keys("herald.dev", false);
  std::map<std::string, ProgressRecord> records, children;
  records["create"].success = true;
  records["never-stored"].failure = true;
  const json essence = {{"spec", {{"a", 1}}}};
  CycleResult cycle{Cause::kCreate, &records, &children, &essence};
  const WritePlan plan = PlanCycleWrites(Body(), keys, cycle, json::object(),
                                         json::object(), 1024);
  EXPECT_TRUE(plan.all_done);
  const json& ann = plan.patch["metadata"]["annotations"];
  // Only records that exist are deleted (a null for each).
  EXPECT_TRUE(ann.contains("herald.dev/create"));
  EXPECT_TRUE(ann["herald.dev/create"].is_null());
  EXPECT_FALSE(ann.contains("herald.dev/never-stored"));
  EXPECT_EQ(ann["herald.dev/last-handled-configuration"],
            essence.dump() + "\n");
  EXPECT_FALSE(ann.contains("herald.dev/last-handled-digest"));
  EXPECT_EQ(plan.large_base, WritePlan::LargeBase::kClear);
}

TEST(WritesTest, ALargeDiffBaseIsStoredAsItsDigest) {
  AnnotationKeys keys("herald.dev", false);
  std::map<std::string, ProgressRecord> records, children;
  records["create"].success = true;
  const json essence = {{"spec", {{"a", std::string(100, 'x')}}}};
  CycleResult cycle{Cause::kUpdate, &records, &children, &essence};
  const WritePlan plan =
      PlanCycleWrites(Body(), keys, cycle, json::object(), json::object(), 64);
  const json& ann = plan.patch["metadata"]["annotations"];
  EXPECT_EQ(ann["herald.dev/last-handled-digest"],
            Digest(essence.dump() + "\n"));
  EXPECT_FALSE(ann.contains("herald.dev/last-handled-configuration"));
  EXPECT_EQ(plan.large_base, WritePlan::LargeBase::kSet);
  EXPECT_EQ(plan.digested_bytes, essence.dump().size() + 1);
}

TEST(WritesTest, FinishedDeletionsReleaseTheFinalizerWithoutADiffBase) {
  AnnotationKeys keys(kKopfPrefix, false);
  std::map<std::string, ProgressRecord> records, children;
  records["delete"].success = true;
  const json essence = {{"spec", {{"a", 1}}}};
  CycleResult cycle{Cause::kDelete, &records, &children, &essence};
  const WritePlan plan = PlanCycleWrites(Body(), keys, cycle, json::object(),
                                         json::object(), 1024);
  EXPECT_TRUE(plan.remove_finalizer);
  // Nothing to write: no diff-base for a deletion, and Kopf's own prefix
  // needs no marker.
  EXPECT_TRUE(plan.patch.empty()) << plan.patch;
}

TEST(WritesTest, ChildRecordsAreStoredBesideTheirParents) {
  AnnotationKeys keys("herald.dev", false);
  std::map<std::string, ProgressRecord> records, children;
  records["create"].subrefs = {"create/a"};
  children["create/a"].retries = 1;
  const json essence = json::object();
  CycleResult cycle{Cause::kCreate, &records, &children, &essence};
  const WritePlan plan = PlanCycleWrites(Body(), keys, cycle, json::object(),
                                         json::object(), 1024);
  EXPECT_EQ(plan.patch["metadata"]["annotations"]["herald.dev/create.a"],
            EncodeProgress(children["create/a"]));
}

TEST(WritesTest, StatusGoesIntoTheMainPatchWithoutASubresource) {
  json patch = {{"spec", {{"a", 1}}}};
  json status = {{"h", {{"ok", true}}}};
  FoldStatus(/*has_status_subresource=*/true, patch, status);
  EXPECT_FALSE(patch.contains("status"));
  EXPECT_FALSE(status.empty());
  FoldStatus(false, patch, status);
  EXPECT_EQ(patch["status"]["h"]["ok"], true);
  EXPECT_TRUE(status.empty());
}

TEST(WritesTest, TheEarliestDelayOfUnfinishedRecords) {
  std::map<std::string, ProgressRecord> records;
  EXPECT_EQ(EarliestDelay(records), absl::InfiniteFuture());
  records["a"].delayed = kNow + absl::Seconds(9);
  records["b"].delayed = kNow + absl::Seconds(4);
  records["c"].delayed = kNow + absl::Seconds(1);
  records["c"].success = true;
  EXPECT_EQ(EarliestDelay(records), kNow + absl::Seconds(4));
}

TEST(WritesTest, FinalizerPatchesAreGuardedByTheResourceVersion) {
  json body = {{"metadata", {{"resourceVersion", "7"}}}};
  EXPECT_EQ(FinalizerPatch(body, "f", true, "7")->dump(),
            R"([{"op":"test","path":"/metadata/resourceVersion","value":"7"},)"
            R"({"op":"add","path":"/metadata/finalizers","value":["f"]}])");
  EXPECT_FALSE(FinalizerPatch(body, "f", false, "7"));
  body["metadata"]["finalizers"] = {"other", "f"};
  EXPECT_EQ(FinalizerPatch(body, "g", true, "7")->at(1).dump(),
            R"({"op":"add","path":"/metadata/finalizers/-","value":"g"})");
  const json remove = *FinalizerPatch(body, "f", false, "7");
  EXPECT_EQ(remove.size(), 3u);
  EXPECT_EQ(remove[1].dump(),
            R"({"op":"test","path":"/metadata/finalizers/1","value":"f"})");
  EXPECT_EQ(remove[2].dump(),
            R"({"op":"remove","path":"/metadata/finalizers/1"})");
  EXPECT_FALSE(FinalizerPatch(body, "absent", false, "7"));
}

}  // namespace
}  // namespace herald::engine
