#include "server/engine/essence.h"

#include "gtest/gtest.h"

namespace herald::engine {
namespace {

using nlohmann::json;

// The expected values come from Kopf 1.45.2's own functions
// (AnnotationsDiffBaseStorage.build, AnnotationsProgressStorage.clear,
// diffs.diff, diffs.reduce) on the same inputs.
const json kBody = json::parse(R"({
  "apiVersion": "kopf.dev/v1", "kind": "KopfExample",
  "metadata": {"name": "ex", "namespace": "default", "uid": "u1", "resourceVersion": "5",
    "generation": 2, "labels": {"app": "x"},
    "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}",
      "kopf.zalando.org/create_fn": "{\"started\":\"x\"}",
      "kopf.zalando.org/last-handled-configuration": "{}",
      "other.example/keep": "yes",
      "herald.dev/kopf-managed": "yes", "herald.dev/fn": "{}",
      "team.kopf.zalando.org/x": "1"},
    "finalizers": ["kopf.zalando.org/KopfFinalizerMarker"]},
  "spec": {"field": "value", "items": [1, 2], "nested": {"a": null, "b": {}}},
  "status": {"create_fn": {"message": "hi"}}})");

constexpr char kExpectedEssence[] =
    R"({"metadata":{"annotations":{"other.example/keep":"yes"},"labels":{"app":"x"}},)"
    R"("spec":{"field":"value","items":[1,2],"nested":{"a":null,"b":{}}}})";

TEST(EssenceTest, MatchesKopfForEitherPrefix) {
  EXPECT_EQ(Essence(kBody, "kopf.zalando.org").dump(), kExpectedEssence);
  EXPECT_EQ(Essence(kBody, "herald.dev").dump(), kExpectedEssence);
}

TEST(EssenceTest, OwnPrefixIsDroppedEvenBeforeItsMarkerExists) {
  json body = kBody;
  body["metadata"]["annotations"].erase("herald.dev/kopf-managed");
  EXPECT_EQ(Essence(body, "herald.dev").dump(), kExpectedEssence);
}

TEST(EssenceTest, EmptyStanzasGo) {
  auto bare = json::parse(
      R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","annotations":{"kopf.zalando.org/x":"1"}},"data":{"k":"v"},"status":{}})");
  EXPECT_EQ(Essence(bare, "kopf.zalando.org").dump(), R"({"data":{"k":"v"}})");
}

TEST(EssenceTest, ExtraFieldsAreKept) {
  auto e = Essence(kBody, "kopf.zalando.org", {"status.create_fn.message"});
  EXPECT_EQ(e["status"], json::parse(R"({"create_fn":{"message":"hi"}})"));
}

TEST(DiffTest, MatchesKopf) {
  auto old_v = json::parse(
      R"({"spec": {"a": 1, "b": {"c": 2, "d": [1,2]}, "gone": "x"}, "metadata": {"labels": {"l": "1"}}})");
  auto new_v = json::parse(
      R"({"spec": {"a": 1.0, "b": {"c": 3, "d": [1,2,3], "e": null}, "added": {"z": 1}}, "metadata": {"labels": {"l": "1", "m": "2"}}})");
  Diff d = ComputeDiff(old_v, new_v);
  // Same items as Kopf; Kopf's order within a map is a set's, ours is by key.
  EXPECT_EQ(DiffToJson(d).dump(),
            R"([["add",["metadata","labels","m"],null,"2"],)"
            R"(["add",["spec","added"],null,{"z":1}],)"
            R"(["remove",["spec","gone"],"x",null],)"
            R"(["change",["spec","b","c"],2,3],)"
            R"(["change",["spec","b","d"],[1,2],[1,2,3]]])");
  EXPECT_EQ(DiffToJson(ReduceDiff(d, {"spec", "b"})).dump(),
            R"([["change",["c"],2,3],["change",["d"],[1,2],[1,2,3]]])");
}

TEST(DiffTest, WholeValuesAndNulls) {
  EXPECT_EQ(DiffToJson(ComputeDiff(nullptr, json::parse(R"({"a":1})"))).dump(),
            R"([["add",[],null,{"a":1}]])");
  EXPECT_EQ(DiffToJson(ComputeDiff(json::parse(R"({"a":1})"), nullptr)).dump(),
            R"([["remove",[],{"a":1},null]])");
  EXPECT_TRUE(
      ComputeDiff(json::parse(R"({"a":[1]})"), json::parse(R"({"a":[1]})"))
          .empty());
  Diff d =
      ComputeDiff(json::object(), json::parse(R"({"spec":{"x":{"y":1}}})"));
  EXPECT_EQ(DiffToJson(ReduceDiff(d, {"spec", "x", "y"})).dump(),
            R"([["add",[],null,1]])");
}

TEST(FieldPathTest, ParseAndResolve) {
  EXPECT_EQ(ParseFieldPath("spec.a.b"),
            (std::vector<std::string>{"spec", "a", "b"}));
  EXPECT_EQ(Resolve(kBody, {"spec", "field"}), "value");
  EXPECT_TRUE(Resolve(kBody, {"spec", "nope", "x"}).is_null());
  EXPECT_TRUE(Resolve(kBody, {"spec", "field", "x"}).is_null());
}

}  // namespace
}  // namespace herald::engine
