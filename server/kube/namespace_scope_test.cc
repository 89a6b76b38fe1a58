#include "server/kube/namespace_scope.h"

#include <string>

#include "absl/flags/marshalling.h"
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

TEST(NamespaceScopeTest, BracketsAndNames) {
  auto s = NamespaceScope::Parse("team-[ab],!team-[!a-z]x");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->Matches("team-a"));
  EXPECT_FALSE(s->Matches("team-c"));
  // Patterns that could match no namespace name are errors naming why.
  struct Case {
    const char* spec;
    const char* error;
  };
  const Case cases[] = {
      {"team-[", "'team-[': the '[' at position 6 is never closed"},
      {"team-[ab", "'team-[ab': the '[' at position 6 is never closed"},
      {"team-[]", "'team-[]': the [...] at position 6 lists no characters"},
      {"team-*]", "'team-*]': the ']' at position 7 closes no '['"},
      {"team-]", "'team-]' is not a namespace name"},
      {"Team-*", "'Team-*': 'T' at position 1 cannot be in a namespace name"},
      {"team-[A]", "'team-[A]': 'A' at position 7 cannot be in"},
      {"Default", "'Default' is not a namespace name (lowercase letters"},
      {"a.b", "'a.b' is not a namespace name"},
      {"-x", "'-x' is not a namespace name"},
      {"ok,!", "an empty pattern after '!'"},
  };
  for (const auto& c : cases) {
    auto bad = NamespaceScope::Parse(c.spec);
    ASSERT_FALSE(bad.ok()) << c.spec;
    EXPECT_THAT(bad.status().message(), ::testing::HasSubstr(c.error))
        << c.spec;
  }
  EXPECT_FALSE(NamespaceScope::Parse(std::string(64, 'n')).ok());
  EXPECT_TRUE(NamespaceScope::Parse(std::string(63, 'n')).ok());
}

TEST(NamespaceScopeFlagTest, ParsesLikeParseAndUnparsesToTheText) {
  NamespaceScope scope;
  std::string error;
  ASSERT_TRUE(absl::ParseFlag("team-*, !team-x", &scope, &error)) << error;
  EXPECT_TRUE(scope.Matches("team-a"));
  EXPECT_FALSE(scope.Matches("team-x"));
  EXPECT_FALSE(scope.Matches("other"));
  EXPECT_EQ(absl::UnparseFlag(scope), "team-*, !team-x");

  ASSERT_TRUE(absl::ParseFlag("", &scope, &error)) << error;
  EXPECT_TRUE(scope.cluster_wide());
  EXPECT_EQ(absl::UnparseFlag(scope), "");
}

TEST(NamespaceScopeFlagTest, AnErrorSaysWhyAndLeavesTheScopeAsItWas) {
  NamespaceScope scope;
  std::string error;
  ASSERT_TRUE(absl::ParseFlag("a,b", &scope, &error)) << error;
  EXPECT_FALSE(absl::ParseFlag("team-[", &scope, &error));
  EXPECT_EQ(error,
            "'team-[': the '[' at position 6 is never closed (a [...] lists "
            "characters or ranges, e.g. team-[ab] or team-[a-c])");
  EXPECT_FALSE(absl::ParseFlag("Team-A", &scope, &error));
  EXPECT_THAT(error, ::testing::StartsWith("'Team-A' is not a namespace name"));
  EXPECT_EQ(absl::UnparseFlag(scope), "a,b");
  EXPECT_TRUE(scope.fixed());
}

}  // namespace
}  // namespace herald::kube
