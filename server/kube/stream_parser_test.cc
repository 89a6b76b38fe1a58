#include "server/kube/stream_parser.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace herald::kube {
namespace {

using ::testing::ElementsAre;

TEST(LineSplitterTest, LinesAcrossChunkBoundaries) {
  const std::string stream =
      "{\"type\":\"ADDED\",\"object\":{\"a\":\"x\\ny\"}}\n"
      "{\"type\":\"BOOKMARK\"}\n\n"
      "{\"type\":\"DELETED\"}\n";
  // Every split point, and byte-by-byte.
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    std::vector<std::string> lines;
    LineSplitter s([&](absl::string_view l) {
      lines.emplace_back(l);
      return true;
    });
    ASSERT_TRUE(s.Feed(absl::string_view(stream).substr(0, cut)));
    ASSERT_TRUE(s.Feed(absl::string_view(stream).substr(cut)));
    EXPECT_THAT(
        lines, ElementsAre("{\"type\":\"ADDED\",\"object\":{\"a\":\"x\\ny\"}}",
                           "{\"type\":\"BOOKMARK\"}", "{\"type\":\"DELETED\"}"))
        << "cut at " << cut;
    EXPECT_EQ(s.pending(), 0u);
  }
  std::vector<std::string> lines;
  LineSplitter s([&](absl::string_view l) {
    lines.emplace_back(l);
    return true;
  });
  for (char c : stream) s.Feed(absl::string_view(&c, 1));
  EXPECT_EQ(lines.size(), 3u);
}

TEST(LineSplitterTest, KeepsOnlyTheUnfinishedTailAndStopsOnRequest) {
  int n = 0;
  LineSplitter s([&](absl::string_view) { return ++n < 2; });
  EXPECT_TRUE(s.Feed("a\nbb"));
  EXPECT_EQ(s.pending(), 2u);
  EXPECT_FALSE(s.Feed("b\nc\nd\n"));
  EXPECT_EQ(n, 2);
}

constexpr char kList[] =
    R"({"kind":"KopfExampleList","apiVersion":"kopf.dev/v1",
 "metadata":{"resourceVersion":"4242","continue":"abc"},
 "items":[{"metadata":{"name":"a","annotations":{"x":"}]{[\"items\":["}},"spec":{"v":[1,2,{"n":null}]}},
  {"metadata":{"name":"b"}} ,
  {"metadata":{"name":"c\\"}}]})";

TEST(ListItemSplitterTest, ItemsAndEnvelopeAtEveryChunkBoundary) {
  const std::string text = kList;
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    std::vector<std::string> names;
    ListItemSplitter s([&](absl::string_view item) {
      auto j = nlohmann::json::parse(item, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << item;
      if (!j.is_discarded()) names.push_back(j["metadata"]["name"]);
      return true;
    });
    ASSERT_TRUE(s.Feed(absl::string_view(text).substr(0, cut)));
    ASSERT_TRUE(s.Feed(absl::string_view(text).substr(cut)));
    ASSERT_TRUE(s.Finish().ok()) << s.Finish();
    EXPECT_THAT(names, ElementsAre("a", "b", "c\\")) << "cut at " << cut;
    auto env = nlohmann::json::parse(s.envelope(), nullptr, false);
    ASSERT_FALSE(env.is_discarded()) << s.envelope();
    EXPECT_EQ(env["metadata"]["resourceVersion"], "4242");
    EXPECT_EQ(env["metadata"]["continue"], "abc");
    EXPECT_EQ(env["items"], nlohmann::json::array());
  }
}

TEST(ListItemSplitterTest, ByteByByteAndEmptyOrNullItems) {
  std::string text = kList;
  int n = 0;
  ListItemSplitter s([&](absl::string_view) { return ++n > 0; });
  for (char c : text) ASSERT_TRUE(s.Feed(absl::string_view(&c, 1)));
  EXPECT_TRUE(s.Finish().ok());
  EXPECT_EQ(n, 3);

  ListItemSplitter empty([&](absl::string_view) { return true; });
  ASSERT_TRUE(empty.Feed(
      R"({"kind":"List","metadata":{"resourceVersion":"1"},"items":[]})"));
  EXPECT_TRUE(empty.Finish().ok());
  ListItemSplitter null_items([&](absl::string_view) { return true; });
  ASSERT_TRUE(null_items.Feed(R"({"kind":"List","metadata":{},"items":null})"));
  EXPECT_TRUE(null_items.Finish().ok());
}

TEST(ListItemSplitterTest, TruncatedAndMalformedInputs) {
  ListItemSplitter cut([](absl::string_view) { return true; });
  ASSERT_TRUE(cut.Feed(std::string(kList).substr(0, 120)));
  EXPECT_FALSE(cut.Finish().ok());
  ListItemSplitter arr([](absl::string_view) { return true; });
  EXPECT_FALSE(arr.Feed("[1,2]"));
  ListItemSplitter scalar([](absl::string_view) { return true; });
  EXPECT_FALSE(scalar.Feed(R"({"items":[1]})"));
}

}  // namespace
}  // namespace herald::kube
