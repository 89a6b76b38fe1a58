#include "server/engine/flag_types.h"

#include <string>

#include "absl/flags/marshalling.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::engine {
namespace {

using ::testing::SizeIs;

TEST(IndexSpecsFlagTest, ParsesLabelAndFieldIndices) {
  IndexSpecs indices;
  std::string error;
  ASSERT_TRUE(absl::ParseFlag(
      "by_app=pods:label:app.kubernetes.io/name,by_node=pods:field:spec."
      "nodeName",
      &indices, &error))
      << error;
  ASSERT_THAT(indices.specs, SizeIs(2));
  const HandlerSpec& by_app = indices.specs[0];
  EXPECT_EQ(by_app.id, "by_app");
  EXPECT_EQ(by_app.resource, "pods");
  EXPECT_EQ(by_app.cause, Cause::kIndex);
  ASSERT_TRUE(by_app.index.has_value());
  EXPECT_EQ(by_app.index->label, "app.kubernetes.io/name");
  EXPECT_TRUE(by_app.index->field.empty());
  const HandlerSpec& by_node = indices.specs[1];
  EXPECT_EQ(by_node.id, "by_node");
  ASSERT_TRUE(by_node.index.has_value());
  EXPECT_EQ(by_node.index->field, "spec.nodeName");
  EXPECT_TRUE(by_node.index->label.empty());
}

TEST(IndexSpecsFlagTest, TheResourceIsWrittenAsKubectlNamesIt) {
  IndexSpecs indices;
  std::string error;
  ASSERT_TRUE(absl::ParseFlag("by_x=KopfExample.kopf.dev:field:spec.x",
                              &indices, &error))
      << error;
  ASSERT_THAT(indices.specs, SizeIs(1));
  EXPECT_EQ(indices.specs[0].resource, "KopfExample.kopf.dev");
}

TEST(IndexSpecsFlagTest, UnparsesToTextThatParsesToTheSameSpecs) {
  const std::string text = "by_app=pods:label:app,by_node=pods:field:spec.a.b";
  IndexSpecs indices;
  std::string error;
  ASSERT_TRUE(absl::ParseFlag(text, &indices, &error)) << error;
  EXPECT_EQ(absl::UnparseFlag(indices), text);
  IndexSpecs none;
  ASSERT_TRUE(absl::ParseFlag("", &none, &error)) << error;
  EXPECT_TRUE(none.specs.empty());
  EXPECT_EQ(absl::UnparseFlag(none), "");
}

TEST(IndexSpecsFlagTest, AMalformedEntryIsNamedWithTheShapeExpected) {
  for (const char* text :
       {"by_app", "=pods:label:app", "by_app=pods", "by_app=pods:label",
        "by_app=pods:label:", "by_app=:label:app", "by_app=pods:tag:app",
        "by_app=pods:label:app,,by_node=pods:field:spec.nodeName"}) {
    IndexSpecs indices;
    std::string error;
    EXPECT_FALSE(absl::ParseFlag(text, &indices, &error)) << text;
    EXPECT_THAT(error,
                ::testing::EndsWith("' is not NAME=RESOURCE:label:KEY or "
                                    "NAME=RESOURCE:field:PATH"))
        << text;
  }
  IndexSpecs indices;
  std::string error;
  EXPECT_FALSE(absl::ParseFlag("by_app=pods:tag:app", &indices, &error));
  EXPECT_EQ(error,
            "'by_app=pods:tag:app' is not NAME=RESOURCE:label:KEY or "
            "NAME=RESOURCE:field:PATH");
  // The empty second entry is the one named.
  EXPECT_FALSE(absl::ParseFlag("by_app=pods:label:app,", &indices, &error));
  EXPECT_EQ(error,
            "'' is not NAME=RESOURCE:label:KEY or NAME=RESOURCE:field:PATH");
}

TEST(IndexSpecsFlagTest, AnEntryTheRegistryRefusesIsNamedWithItsReason) {
  IndexSpecs indices;
  std::string error;
  EXPECT_FALSE(
      absl::ParseFlag("ok=pods:label:app,by_app=pods:label:not a/valid//key",
                      &indices, &error));
  EXPECT_EQ(error,
            "'by_app=pods:label:not a/valid//key': index label 'not "
            "a/valid//key': not a valid label key: more than one '/' (a key "
            "is an optional DNS subdomain prefix and '/', then a name, e.g. "
            "'example.com/my-name')");
  EXPECT_FALSE(
      absl::ParseFlag("by_node=pods:field:spec..nodeName", &indices, &error));
  EXPECT_EQ(error,
            "'by_node=pods:field:spec..nodeName': index field "
            "'spec..nodeName': segment 2 is empty (a field path is "
            "dot-separated keys, e.g. spec.size)");
  EXPECT_TRUE(indices.specs.empty()) << "left unchanged";
}

TEST(OperatorMemoFlagTest, TakesAJsonObject) {
  OperatorMemo memo;
  std::string error;
  EXPECT_EQ(absl::UnparseFlag(memo), "{}");
  ASSERT_TRUE(
      absl::ParseFlag(R"({"region": "eu", "n": [1, 2]})", &memo, &error))
      << error;
  EXPECT_EQ(memo.value["region"], "eu");
  EXPECT_EQ(memo.value["n"].size(), 2u);
  EXPECT_EQ(absl::UnparseFlag(memo), R"({"n":[1,2],"region":"eu"})");
}

TEST(OperatorMemoFlagTest, AnythingButAJsonObjectIsRefused) {
  OperatorMemo memo;
  std::string error;
  ASSERT_TRUE(absl::ParseFlag(R"({"kept": true})", &memo, &error)) << error;
  for (const char* text : {"[1]", "1", "\"x\"", "null", "{", "", "{} x"}) {
    error.clear();
    EXPECT_FALSE(absl::ParseFlag(text, &memo, &error)) << text;
    EXPECT_EQ(error, "not a JSON object") << text;
  }
  EXPECT_EQ(memo.value["kept"], true) << "left unchanged";
}

}  // namespace
}  // namespace herald::engine
