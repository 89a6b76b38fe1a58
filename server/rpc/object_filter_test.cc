#include "server/rpc/object_filter.h"

#include "gtest/gtest.h"
#include "server/engine/test_resources.h"

namespace herald::rpc {
namespace {

using ::herald::engine::testing::Kex;

kube::ResourceInfo KexWithShortName() {
  kube::ResourceInfo r = Kex();
  r.short_names = {"kex"};
  return r;
}

TEST(NamesResourceTest, AsKubectlNamesThem) {
  const kube::ResourceInfo r = KexWithShortName();
  for (const char* name :
       {"kopfexamples", "kopfexample", "KopfExample", "kex", "KEX",
        "kopfexamples.kopf.dev", "KopfExample.kopf.dev",
        "kopfexamples.v1.kopf.dev", "kopfexamples.v1", "as-asked"}) {
    EXPECT_TRUE(NamesResource(r, "as-asked", name)) << name;
  }
  for (const char* name :
       {"", "pods", "kopfexamples.apps", "kopfexamples.v2.kopf.dev",
        "kopfexamples.v2", "kopfexamplesx"}) {
    EXPECT_FALSE(NamesResource(r, "as-asked", name)) << name;
  }
  // No watch name: an empty name still names nothing.
  EXPECT_FALSE(NamesResource(r, "", ""));
}

TEST(FilterMatchesTest, EmptyFieldsMatchEverything) {
  const kube::ResourceInfo r = KexWithShortName();
  const cache::ObjectKey key{"default", "kex-1"};
  v1::ObjectFilter f;
  EXPECT_TRUE(FilterMatches(f, r, key));
  f.set_resource("kex");
  EXPECT_TRUE(FilterMatches(f, r, key));
  f.set_namespace_("default");
  EXPECT_TRUE(FilterMatches(f, r, key));
  f.set_name("kex-1");
  EXPECT_TRUE(FilterMatches(f, r, key));

  v1::ObjectFilter other = f;
  other.set_resource("pods");
  EXPECT_FALSE(FilterMatches(other, r, key));
  other = f;
  other.set_namespace_("kube-system");
  EXPECT_FALSE(FilterMatches(other, r, key));
  other = f;
  other.set_name("kex-2");
  EXPECT_FALSE(FilterMatches(other, r, key));
}

TEST(LimitOfTest, ZeroMeansFiveHundred) {
  EXPECT_EQ(LimitOf(0), 500u);
  EXPECT_EQ(LimitOf(3), 3u);
}

}  // namespace
}  // namespace herald::rpc
