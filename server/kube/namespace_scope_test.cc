#include "server/kube/namespace_scope.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::kube {
namespace {

TEST(NamespaceScopeTest, ClusterWide) {
  for (const char* spec : {"", "*", " , "}) {
    auto s = NamespaceScope::Parse(spec);
    ASSERT_TRUE(s.ok()) << spec;
    EXPECT_TRUE(s->cluster_wide()) << spec;
    EXPECT_FALSE(s->fixed());
    EXPECT_TRUE(s->Matches("anything"));
  }
}

TEST(NamespaceScopeTest, FixedNames) {
  auto s = NamespaceScope::Parse("ns1, ns2");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->fixed());
  EXPECT_THAT(s->names(), ::testing::ElementsAre("ns1", "ns2"));
  EXPECT_TRUE(s->Matches("ns2"));
  EXPECT_FALSE(s->Matches("ns3"));
}

TEST(NamespaceScopeTest, GlobsAndNegations) {
  auto s = NamespaceScope::Parse("team-*,!team-x");
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->fixed());
  EXPECT_FALSE(s->cluster_wide());
  EXPECT_TRUE(s->Matches("team-a"));
  EXPECT_FALSE(s->Matches("team-x"));
  EXPECT_FALSE(s->Matches("default"));
  auto neg = NamespaceScope::Parse("!kube-*");
  ASSERT_TRUE(neg.ok());
  EXPECT_FALSE(neg->fixed());
  EXPECT_TRUE(neg->Matches("default"));
  EXPECT_FALSE(neg->Matches("kube-system"));
}

TEST(NamespaceScopeTest, BadPatternIsAClearError) {
  auto s = NamespaceScope::Parse("ok,bad/name");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), ::testing::HasSubstr("'bad/name'"));
}

}  // namespace
}  // namespace herald::kube
