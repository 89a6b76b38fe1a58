#include "server/kube/events.h"

#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace herald::kube {
namespace {

InvolvedObject Obj(std::string ns) {
  return {"kopf.dev/v1", "KopfExample", std::move(ns), "ex1", "uid-1", "42"};
}

TEST(EventsTest, BodyNamesTheObjectAndCutsLongMessages) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  auto ev = nlohmann::json::parse(BuildEvent(Obj("ns1"), EventKind::kWarning,
                                             "Failed", std::string(5000, 'x'),
                                             "herald", now));
  EXPECT_EQ(ev["metadata"]["namespace"], "ns1");
  EXPECT_EQ(ev["metadata"]["generateName"], "ex1.");
  EXPECT_EQ(ev["type"], "Warning");
  EXPECT_EQ(ev["reason"], "Failed");
  EXPECT_EQ(ev["message"].get<std::string>().size(), kMaxEventMessage);
  EXPECT_EQ(ev["message"].get<std::string>().substr(kMaxEventMessage - 3),
            "...");
  EXPECT_EQ(ev["involvedObject"]["uid"], "uid-1");
  EXPECT_EQ(ev["involvedObject"]["namespace"], "ns1");
  EXPECT_EQ(ev["source"]["component"], "herald");
  EXPECT_EQ(ev["firstTimestamp"], "2027-01-15T08:00:00Z");
}

TEST(EventsTest, ClusterScopedObjectsGoToDefault) {
  auto ev = nlohmann::json::parse(BuildEvent(Obj(""), EventKind::kNormal, "Ok",
                                             "fine", "herald", absl::Now()));
  EXPECT_EQ(ev["metadata"]["namespace"], "default");
  EXPECT_FALSE(ev["involvedObject"].contains("namespace"));
  EXPECT_EQ(ev["type"], "Normal");
}

TEST(EventsTest, CutNeverSplitsAUtf8Sequence) {
  std::string m;
  while (m.size() < 2000) m += "\xC3\xA9";  // é
  auto ev = nlohmann::json::parse(
      BuildEvent(Obj("a"), EventKind::kNormal, "R", m, "herald", absl::Now()));
  std::string got = ev["message"];
  EXPECT_LE(got.size(), kMaxEventMessage);
  EXPECT_EQ(got.substr(got.size() - 3), "...");
  EXPECT_EQ((got.size() - 3) % 2, 0u);
}

}  // namespace
}  // namespace herald::kube
