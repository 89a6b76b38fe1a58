#include "server/rpc/json_struct.h"

#include <string>

#include "gtest/gtest.h"

namespace herald::rpc {
namespace {

TEST(JsonStructTest, ObjectsOfEveryKindOfValue) {
  google::protobuf::Struct s;
  ASSERT_TRUE(JsonToStruct(R"({"a": 1, "b": "x", "c": [true, null],
                               "d": {"e": 2.5}})",
                           &s)
                  .ok());
  const auto& f = s.fields();
  EXPECT_EQ(f.at("a").number_value(), 1);
  EXPECT_EQ(f.at("b").string_value(), "x");
  ASSERT_EQ(f.at("c").list_value().values_size(), 2);
  EXPECT_TRUE(f.at("c").list_value().values(0).bool_value());
  EXPECT_EQ(f.at("c").list_value().values(1).kind_case(),
            google::protobuf::Value::kNullValue);
  EXPECT_EQ(f.at("d").struct_value().fields().at("e").number_value(), 2.5);
}

// Deeper than protobuf's JSON parser takes: built from nlohmann's DOM.
TEST(JsonStructTest, DeeplyNestedObjects) {
  const int depth = 60;
  std::string text;
  for (int i = 0; i < depth; ++i) text += R"({"n": )";
  text += R"("leaf")";
  for (int i = 0; i < depth; ++i) text += "}";
  google::protobuf::Struct s;
  ASSERT_TRUE(JsonToStruct(text, &s).ok());
  const google::protobuf::Struct* level = &s;
  for (int i = 1; i < depth; ++i) {
    ASSERT_EQ(level->fields().count("n"), 1u) << "level " << i;
    level = &level->fields().at("n").struct_value();
  }
  EXPECT_EQ(level->fields().at("n").string_value(), "leaf");
}

TEST(JsonStructTest, TextThatIsNoObjectIsAnError) {
  google::protobuf::Struct s;
  absl::Status st = JsonToStruct("{not json", &s);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "it is not valid JSON");
  EXPECT_EQ(s.fields_size(), 0);
  st = JsonToStruct("[1, 2]", &s);
  EXPECT_EQ(st.message(), "it is not an object");
}

TEST(JsonStructTest, ValuesOfAnyKind) {
  google::protobuf::Value v;
  JsonToValue(nlohmann::json::parse(R"(["a", 3, {"k": false}])"), &v);
  ASSERT_EQ(v.list_value().values_size(), 3);
  EXPECT_EQ(v.list_value().values(0).string_value(), "a");
  EXPECT_EQ(v.list_value().values(1).number_value(), 3);
  EXPECT_FALSE(
      v.list_value().values(2).struct_value().fields().at("k").bool_value());
}

}  // namespace
}  // namespace herald::rpc
