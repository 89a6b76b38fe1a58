#include "server/engine/inspection.h"

#include "gtest/gtest.h"
#include "server/engine/test_resources.h"

namespace herald::engine {
namespace {

using ::herald::engine::testing::Kex;
using ::herald::engine::testing::Spec;
using nlohmann::json;

StreamInfo Stream(StreamId id, std::vector<std::string> handlers) {
  StreamInfo s;
  s.stream = id;
  s.handler_ids = std::move(handlers);
  return s;
}

TEST(SnapshotHandlersTest, RegisteredThenPendingWithCountersAndProcesses) {
  Registry registry;
  ASSERT_TRUE(registry.Add(Spec("update_fn", Cause::kUpdate), Kex()).ok());
  ASSERT_TRUE(registry.Add(Spec("create_fn", Cause::kCreate), Kex()).ok());
  HandlerSpec pending = Spec("later_fn", Cause::kCreate);
  pending.resource = "widgets";
  ASSERT_TRUE(
      registry
          .AddPending(pending, "widgets: not found", absl::FromUnixSeconds(1))
          .ok());
  const std::vector<StreamInfo> streams = {
      Stream(1, {"create_fn", "update_fn", "later_fn"}),
      Stream(2, {"create_fn"}), Stream(3, {})};
  std::map<std::string, HandlerStats> stats;
  stats["create_fn"] = {5, 3, 1, 1};
  std::map<std::string, LatencyHistogram> latencies;
  latencies["create_fn"].Add(absl::Milliseconds(10));
  latencies["update_fn"];  // No outcome yet.

  const auto handlers = SnapshotHandlers(registry, streams, stats, latencies);
  ASSERT_EQ(handlers.size(), 3u);

  const HandlerSnapshot& create = handlers[0];
  EXPECT_EQ(create.handler_id, "create_fn");
  EXPECT_EQ(create.resource_name, "kopfexamples");
  ASSERT_TRUE(create.resource.has_value());
  EXPECT_EQ(create.resource->FullName(), Kex().FullName());
  EXPECT_EQ(create.cause, Cause::kCreate);
  EXPECT_EQ(create.process_count, 2u);
  EXPECT_EQ(create.stats.deliveries, 5u);
  EXPECT_EQ(create.stats.successes, 3u);
  EXPECT_EQ(create.stats.temporary_failures, 1u);
  EXPECT_EQ(create.stats.permanent_failures, 1u);
  ASSERT_TRUE(create.latency_p50.has_value());
  ASSERT_TRUE(create.latency_p99.has_value());
  // Buckets are 10% apart.
  EXPECT_GT(*create.latency_p50, absl::Milliseconds(9));
  EXPECT_LT(*create.latency_p50, absl::Milliseconds(11));
  EXPECT_TRUE(create.pending_reason.empty());

  const HandlerSnapshot& update = handlers[1];
  EXPECT_EQ(update.handler_id, "update_fn");
  EXPECT_EQ(update.process_count, 1u);
  EXPECT_EQ(update.stats.deliveries, 0u);
  EXPECT_FALSE(update.latency_p50.has_value());
  EXPECT_FALSE(update.latency_p99.has_value());

  const HandlerSnapshot& later = handlers[2];
  EXPECT_EQ(later.handler_id, "later_fn");
  EXPECT_EQ(later.resource_name, "widgets");
  EXPECT_FALSE(later.resource.has_value());
  EXPECT_EQ(later.pending_reason, "widgets: not found");
  EXPECT_EQ(later.process_count, 1u);
}

TEST(SnapshotHandlersTest, ActivitiesHaveAnEmptyResource) {
  Registry registry;
  HandlerSpec startup = Spec("startup_fn", Cause::kStartup);
  startup.resource.clear();
  ASSERT_TRUE(registry.Add(startup, kube::ResourceInfo()).ok());
  const auto handlers = SnapshotHandlers(registry, {}, {}, {});
  ASSERT_EQ(handlers.size(), 1u);
  ASSERT_TRUE(handlers[0].resource.has_value());
  EXPECT_TRUE(handlers[0].resource->plural.empty());
  EXPECT_EQ(handlers[0].process_count, 0u);
}

json Body(json annotations) {
  return {{"metadata",
           {{"name", "kex-1"},
            {"namespace", "default"},
            {"annotations", std::move(annotations)}}}};
}

TEST(SnapshotProgressTest, ReadsEachHandlersRecordInRegistrationOrder) {
  Registry registry;
  // Long enough for its v1 key (the prefix counts) to differ from its v2 key.
  const std::string update_id = "update_" + std::string(53, 'x');
  ASSERT_TRUE(registry.Add(Spec(update_id, Cause::kUpdate), Kex()).ok());
  ASSERT_TRUE(registry.Add(Spec("create_fn", Cause::kCreate), Kex()).ok());
  ASSERT_TRUE(registry.Add(Spec("broken_fn", Cause::kCreate), Kex()).ok());
  ASSERT_TRUE(registry.Add(Spec("idle_fn", Cause::kCreate), Kex()).ok());
  kube::ResourceInfo other = Kex();
  other.plural = "others";
  other.kind = "Other";
  ASSERT_TRUE(registry.Add(Spec("other_fn", Cause::kCreate), other).ok());
  const AnnotationKeys keys("herald.dev");

  ProgressRecord create;
  create.purpose = "create";
  create.retries = 2;
  create.message = "Not ready yet.";
  create.started = absl::FromUnixSeconds(100);
  create.delayed = absl::FromUnixSeconds(400);
  ProgressRecord update;
  update.purpose = "update";
  update.success = true;
  ASSERT_NE(keys.V1Key(update_id), keys.V2Key(update_id));
  const json body = Body({
      // Only the v1 key: read when there is no v2 key.
      {keys.V1Key(update_id), EncodeProgress(update)},
      {keys.V2Key("create_fn"), EncodeProgress(create)},
      {keys.V2Key("broken_fn"), "{not json"},
      {keys.V2Key("other_fn"), EncodeProgress(create)},
      {"unrelated", "x"},
  });

  const auto progress =
      SnapshotProgress(registry, keys, Kex().FullName(), body);
  ASSERT_EQ(progress.size(), 2u);
  EXPECT_EQ(progress[0].handler_id, update_id);
  EXPECT_TRUE(progress[0].record.success);
  EXPECT_EQ(progress[0].record.purpose, "update");
  EXPECT_EQ(progress[1].handler_id, "create_fn");
  EXPECT_EQ(progress[1].record.purpose, "create");
  EXPECT_EQ(progress[1].record.retries, 2);
  EXPECT_EQ(progress[1].record.message, "Not ready yet.");
  EXPECT_EQ(progress[1].record.started, absl::FromUnixSeconds(100));
  EXPECT_EQ(progress[1].record.delayed, absl::FromUnixSeconds(400));
  EXPECT_FALSE(progress[1].record.success);
}

TEST(SnapshotProgressTest, NoAnnotationsNoProgress) {
  Registry registry;
  ASSERT_TRUE(registry.Add(Spec("create_fn", Cause::kCreate), Kex()).ok());
  const AnnotationKeys keys("herald.dev");
  EXPECT_TRUE(SnapshotProgress(registry, keys, Kex().FullName(), json::object())
                  .empty());
  EXPECT_TRUE(
      SnapshotProgress(registry, keys, Kex().FullName(), Body("text")).empty());
  EXPECT_TRUE(
      SnapshotProgress(registry, keys, "unknown.v1.x", Body({})).empty());
}

TEST(SnapshotIndexTest, EntriesInOrderWithTheirValues) {
  const json index = json::parse(R"([["a", [1, {"x": 2}]], [null, []]])");
  const IndexSnapshot s = SnapshotIndex(index);
  ASSERT_EQ(s.entries.size(), 2u);
  EXPECT_EQ(s.entries[0].key, "a");
  ASSERT_EQ(s.entries[0].values.size(), 2u);
  EXPECT_EQ(s.entries[0].values[0], 1);
  EXPECT_EQ(s.entries[0].values[1], json({{"x", 2}}));
  EXPECT_TRUE(s.entries[1].key.is_null());
  EXPECT_TRUE(s.entries[1].values.empty());
  EXPECT_TRUE(SnapshotIndex(json::array()).entries.empty());
}

}  // namespace
}  // namespace herald::engine
