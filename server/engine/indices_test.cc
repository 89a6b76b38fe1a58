#include "server/engine/indices.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/test_resources.h"

namespace herald::engine {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class IndicesTest : public ::testing::Test {
 protected:
  IndicesTest() {
    HandlerSpec by_label = testing::Spec("by_app", Cause::kIndex);
    by_label.index = IndexOptions{"app", ""};
    EXPECT_TRUE(registry_.Add(by_label, testing::Kex()).ok());
    HandlerSpec by_field = by_label;
    by_field.id = "by_owner";
    by_field.index = IndexOptions{"", "spec.owner"};
    by_field.labels["skip"].match = MetaMatch::kAbsent;
    EXPECT_TRUE(registry_.Add(by_field, testing::Kex()).ok());
    HandlerSpec handler = by_label;
    handler.id = "computed";
    handler.index.reset();
    EXPECT_TRUE(registry_.Add(handler, testing::Kex()).ok());
  }
  static json Body(const std::string& app, const std::string& owner) {
    json b = {{"metadata", {{"name", "x"}}}, {"spec", json::object()}};
    if (!app.empty()) b["metadata"]["labels"]["app"] = app;
    if (!owner.empty()) b["spec"]["owner"] = owner;
    return b;
  }
  const std::vector<const Handler*>& handlers() {
    return registry_.ForResource(testing::Kex().FullName());
  }
  Registry registry_;
  Indices indices_;
};

TEST_F(IndicesTest, ObjectIdsHoldTheirKeys) {
  const std::string id = ObjectId("kopfexamples.v1.kopf.dev", {"ns", "a|b"});
  EXPECT_EQ(id, "kopfexamples.v1.kopf.dev|ns|a|b");
  EXPECT_EQ(KeyOfObjectId(id).ns, "ns");
  EXPECT_EQ(KeyOfObjectId(id).name, "a|b");
  EXPECT_EQ(KeyOfObjectId(ObjectId("nodes.v1", {"", "n1"})).ns, "");
}

TEST_F(IndicesTest, DeclarativeIndicesListObjectReferencesByKey) {
  const std::string a = ObjectId("r", {"ns", "a"});
  const std::string b = ObjectId("r", {"ns", "b"});
  const std::string c = ObjectId("r", {"", "c"});
  indices_.IndexDeclaratively(a, Body("web", "alice"), handlers());
  indices_.IndexDeclaratively(b, Body("web", ""), handlers());
  indices_.IndexDeclaratively(c, Body("db", "alice"), handlers());
  EXPECT_EQ(indices_.Json("by_app", true).dump(),
            R"([["db",[{"name":"c"}]],)"
            R"(["web",[{"name":"a","namespace":"ns"},)"
            R"({"name":"b","namespace":"ns"}]]])");
  EXPECT_EQ(indices_.Json("by_owner", true).dump(),
            R"([["alice",[{"name":"a","namespace":"ns"},{"name":"c"}]]])");
  // An object that loses its label, or stops passing the filters, leaves.
  json skipped = Body("", "alice");
  skipped["metadata"]["labels"]["skip"] = "yes";
  indices_.IndexDeclaratively(a, skipped, handlers());
  EXPECT_EQ(indices_.Json("by_owner", true).dump(),
            R"([["alice",[{"name":"c"}]]])");
  indices_.Drop(c);
  EXPECT_EQ(indices_.Json("by_owner", true).dump(), "[]");
  EXPECT_EQ(indices_.Json("by_app", true).dump(),
            R"([["web",[{"name":"b","namespace":"ns"}]]])");
}

TEST_F(IndicesTest, HandlersResultsBecomeEntries) {
  json from_object = IndexEntries(json::parse(R"({"k1": 1, "k2": [2]})"));
  EXPECT_EQ(from_object.dump(), R"([["k1",1],["k2",[2]]])");
  json from_pairs =
      IndexEntries(json::parse(R"([["k", "v"], "not a pair", ["k", "w"]])"));
  EXPECT_EQ(from_pairs.dump(), R"([["k","v"],["k","w"]])");
  EXPECT_TRUE(IndexEntries(nullptr).empty());

  indices_.Set("computed", "r|ns|a", from_pairs);
  indices_.Set("computed", "r|ns|b", json::array({json::array({"k", "x"})}));
  EXPECT_EQ(indices_.Json("computed", false).dump(),
            R"([["k",["v","w","x"]]])");
  // No entries: the object leaves the index.
  indices_.Set("computed", "r|ns|a", json::array());
  EXPECT_EQ(indices_.Json("computed", false).dump(), R"([["k",["x"]]])");
}

TEST_F(IndicesTest, TextIsCachedUntilAnIndexChanges) {
  indices_.Set("computed", "r|ns|a", json::array({json::array({"k", 1})}));
  const std::string* first = &indices_.Text("computed", false);
  EXPECT_EQ(*first, R"([["k",[1]]])");
  EXPECT_EQ(&indices_.Text("computed", false), first);
  indices_.Set("computed", "r|ns|a", json::array({json::array({"k", 2})}));
  EXPECT_EQ(indices_.Text("computed", false), R"([["k",[2]]])");
}

TEST_F(IndicesTest, ReadyOnceListedAndEveryObjectIndexed) {
  const std::string resource = testing::Kex().FullName();
  EXPECT_FALSE(indices_.Ready(handlers()));
  indices_.MarkListed(resource);
  EXPECT_TRUE(indices_.Listed(resource));
  EXPECT_TRUE(indices_.Ready(handlers()));
  indices_.AddUnindexed(resource, 1);
  EXPECT_FALSE(indices_.Ready(handlers()));
  indices_.AddUnindexed(resource, -1);
  EXPECT_TRUE(indices_.Ready(handlers()));
  // Without index handlers, nothing waits.
  EXPECT_TRUE(Indices().Ready({}));
}

}  // namespace
}  // namespace herald::engine
