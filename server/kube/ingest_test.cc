#include "server/kube/ingest.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace herald::kube {
namespace {

using nlohmann::json;

// The fast path must give exactly what the DOM path gives.
void ExpectSameAsDom(const std::string& text, bool strip) {
  auto fast = IngestObject(text, strip);
  auto dom = IngestObjectWithDom(text, strip);
  ASSERT_EQ(fast.ok(), dom.ok()) << text;
  if (!dom.ok()) {
    EXPECT_EQ(fast.status(), dom.status());
    return;
  }
  EXPECT_EQ(fast->key.ns, dom->key.ns);
  EXPECT_EQ(fast->key.name, dom->key.name);
  EXPECT_EQ(fast->uid, dom->uid);
  EXPECT_EQ(fast->resource_version, dom->resource_version);
  // Same JSON (the DOM path sorts keys; the fast one keeps their order).
  EXPECT_EQ(json::parse(fast->json), json::parse(dom->json)) << fast->json;
  EXPECT_EQ(fast->json.find_first_of("\n "), std::string::npos)
      << "not minified: " << fast->json;
}

TEST(IngestTest, FastPathMatchesTheDomPath) {
  const std::string mf =
      R"("managedFields":[{"manager":"kubectl","fieldsV1":{"f:spec":{}}}])";
  const std::vector<std::string> cases = {
      // managedFields first, in the middle, last, alone, absent.
      R"({"metadata":{)" + mf +
          R"(,"name":"a","namespace":"ns","uid":"u","resourceVersion":"7"},"spec":{"x":1}})",
      R"({"apiVersion":"v1","metadata":{"name":"a",)" + mf +
          R"(,"uid":"u"},"spec":{}})",
      R"({"metadata":{"name":"a","resourceVersion":"9",)" + mf + R"(}})",
      R"({"metadata":{)" + mf + R"(},"x":1})",
      R"({"kind":"Pod","metadata":{"name":"b","labels":{"app":"web"}}})",
      // Whitespace, escapes, unicode, numbers.
      "{ \"metadata\" : { \"name\" : \"c\\\"q\" , \"managedFields\" : [ ] } ,"
      " \"spec\" : { \"s\" : \"\\u00e9\\n\" , \"n\" : -1.5e3 } }",
      // Not an object, no metadata, no name, broken JSON.
      "[1]",
      R"({"metadata":{}})",
      R"({"spec":{}})",
      "nope",
      R"({"metadata":)",
      // Odd shapes that go to the DOM path.
      R"({"metadata":{"name":"d","managedFields":null}})",
      R"({"metadata":{"name":"e"},"metadata":{"name":"f"}})",
      R"({"metadata":{"name":7}})",
  };
  for (const auto& text : cases) {
    ExpectSameAsDom(text, true);
    ExpectSameAsDom(text, false);
  }
}

TEST(IngestTest, ManagedFieldsAreCutFromTheText) {
  auto o = IngestObject(
      R"({"metadata":{"name":"a","managedFields":[{"m":"x"}],"uid":"u"}})",
      true);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->json, R"({"metadata":{"name":"a","uid":"u"}})");
  auto kept = IngestObject(
      R"({"metadata":{"name":"a","managedFields":[{"m":"x"}]}})", false);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->json,
            R"({"metadata":{"name":"a","managedFields":[{"m":"x"}]}})");
}

TEST(IngestTest, SplitsWatchEvents) {
  std::string type;
  absl::string_view object;
  const std::string line =
      R"({"type":"MODIFIED","object":{"metadata":{"name":"a"},"spec":{}}})";
  ASSERT_TRUE(SplitWatchEvent(line, &type, &object));
  EXPECT_EQ(type, "MODIFIED");
  EXPECT_EQ(object, R"({"metadata":{"name":"a"},"spec":{}})");
  EXPECT_FALSE(SplitWatchEvent(R"({"type":"ADDED"})", &type, &object));
  EXPECT_FALSE(SplitWatchEvent("not json", &type, &object));
  EXPECT_FALSE(
      SplitWatchEvent(R"({"type":"ERROR","object":7})", &type, &object));
}

}  // namespace
}  // namespace herald::kube
