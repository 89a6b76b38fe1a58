#include "server/engine/annotation_keys.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::engine {
namespace {

using ::testing::ElementsAre;

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// Expected keys computed with Kopf's own key-forming code.
TEST(AnnotationKeysTest, ShortIdsAreSafeAndUncut) {
  AnnotationKeys k(kKopfPrefix);
  EXPECT_THAT(k.Keys("create_fn"), ElementsAre("kopf.zalando.org/create_fn"));
  EXPECT_THAT(k.Keys("update_fn/spec.field"),
              ElementsAre("kopf.zalando.org/update_fn.spec.field"));
}

TEST(AnnotationKeysTest, V1CutsIncludingThePrefixV2DoesNot) {
  AnnotationKeys k(kKopfPrefix);
  EXPECT_THAT(
      k.Keys(std::string(50, 'a')),
      ElementsAre("kopf.zalando.org/" + std::string(50, 'a'),
                  "kopf.zalando.org/" + std::string(39, 'a') + "-koaVtw"));
}

TEST(AnnotationKeysTest, LongIdsEndInTheirHash) {
  AnnotationKeys k("herald.dev");
  EXPECT_THAT(
      k.Keys("handler/" + Repeat("sub", 25)),
      ElementsAre("herald.dev/handler." + Repeat("sub", 16) + "-Iqoi1w",
                  "herald.dev/handler." + Repeat("sub", 12) + "s-fgF7fQ"));
  AnnotationKeys kopf(kKopfPrefix);
  EXPECT_THAT(
      kopf.Keys(Repeat("x<y>/z", 12)),
      ElementsAre("kopf.zalando.org/" + Repeat("x_y_.z", 9) + "x_-MnK0vw",
                  "kopf.zalando.org/" + Repeat("x_y_.z", 6) + "x_y-4DuuyQ"));
  EXPECT_EQ(AnnotationKeys::Suffix(std::string(70, 'a')), "-DKa84Q");
}

TEST(AnnotationKeysTest, V1CanBeTurnedOff) {
  AnnotationKeys k(kKopfPrefix, /*v1=*/false);
  EXPECT_EQ(k.Keys(std::string(50, 'a')).size(), 1u);
}

TEST(AnnotationKeysTest, DeploymentReplicaSetsAreMarked) {
  AnnotationKeys k(kKopfPrefix);
  auto rs = nlohmann::json::parse(
      R"({"kind":"ReplicaSet","metadata":{"ownerReferences":[{"kind":"Deployment"}]}})");
  EXPECT_THAT(k.Keys("fn", rs), ElementsAre("kopf.zalando.org/fn-ofDRS"));
  auto pod = nlohmann::json::parse(R"({"kind":"Pod","metadata":{}})");
  EXPECT_THAT(k.Keys("fn", pod), ElementsAre("kopf.zalando.org/fn"));
}

TEST(AnnotationKeysTest, MarkerOnlyForNonKopfPrefixes) {
  EXPECT_EQ(AnnotationKeys("herald.dev").MarkerKey(),
            "herald.dev/kopf-managed");
  EXPECT_EQ(AnnotationKeys(kKopfPrefix).MarkerKey(), "");
}

}  // namespace
}  // namespace herald::engine
