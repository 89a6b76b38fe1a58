#include "server/kube/discovery.h"

#include <memory>
#include <string>

#include "absl/flags/marshalling.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/kube/fake_http_client.h"

namespace herald::kube {
namespace {

using ::testing::HasSubstr;

constexpr char kCoreV1[] =
    R"({"kind":"APIResourceList","groupVersion":"v1","resources":[
 {"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":["get","list","watch"],"shortNames":["po"]},
 {"name":"pods/status","singularName":"","namespaced":true,"kind":"Pod","verbs":["get","patch"]},
 {"name":"events","singularName":"event","namespaced":true,"kind":"Event","verbs":["create","list"],"shortNames":["ev"]},
 {"name":"namespaces","singularName":"namespace","namespaced":false,"kind":"Namespace","verbs":["list","watch"],"shortNames":["ns"]}]})";

constexpr char kApis[] = R"({"kind":"APIGroupList","groups":[
 {"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}],"preferredVersion":{"groupVersion":"apps/v1","version":"v1"}},
 {"name":"events.k8s.io","versions":[{"groupVersion":"events.k8s.io/v1","version":"v1"}],"preferredVersion":{"groupVersion":"events.k8s.io/v1","version":"v1"}},
 {"name":"kopf.dev","versions":[{"groupVersion":"kopf.dev/v1","version":"v1"},{"groupVersion":"kopf.dev/v1beta1","version":"v1beta1"}],"preferredVersion":{"groupVersion":"kopf.dev/v1","version":"v1"}},
 {"name":"other.dev","versions":[{"groupVersion":"other.dev/v1","version":"v1"}],"preferredVersion":{"groupVersion":"other.dev/v1","version":"v1"}}]})";

constexpr char kApps[] = R"({"kind":"APIResourceList","resources":[
 {"name":"deployments","singularName":"deployment","namespaced":true,"kind":"Deployment","verbs":["list"],"shortNames":["deploy"]},
 {"name":"deployments/status","namespaced":true,"kind":"Deployment","verbs":["get"]}]})";
constexpr char kEvents[] = R"({"kind":"APIResourceList","resources":[
 {"name":"events","singularName":"event","namespaced":true,"kind":"Event","verbs":["list"],"shortNames":["ev"]}]})";
constexpr char kKopfV1[] = R"({"kind":"APIResourceList","resources":[
 {"name":"kopfexamples","singularName":"kopfexample","namespaced":true,"kind":"KopfExample","verbs":["list"],"shortNames":["kopfexes","kex"]},
 {"name":"kopfexamples/status","namespaced":true,"kind":"KopfExample","verbs":["get"]},
 {"name":"widgets","singularName":"widget","namespaced":false,"kind":"Widget","verbs":["list"]}]})";
constexpr char kKopfV1beta1[] = R"({"kind":"APIResourceList","resources":[
 {"name":"kopfexamples","singularName":"kopfexample","namespaced":true,"kind":"KopfExample","verbs":["list"]}]})";
constexpr char kOther[] = R"({"kind":"APIResourceList","resources":[
 {"name":"widgets","singularName":"widget","namespaced":true,"kind":"Widget","verbs":["list"]}]})";

constexpr char kUnavailable[] =
    R"({"kind":"Status","status":"Failure","message":"the server is currently unable to handle the request","reason":"ServiceUnavailable","code":503})";

struct Fixture {
  // `kopf_answers`: whether kopf.dev/v1 answers, or 503 as a group of an
  // API server that is starting does.
  explicit Fixture(bool kopf_answers = true) {
    auto f = std::make_unique<FakeHttpClient>();
    fake = f.get();
    fake->AddJson("/api", R"({"kind":"APIVersions","versions":["v1"]})");
    fake->AddJson("/api/v1", kCoreV1);
    fake->AddJson("/apis", kApis);
    fake->AddJson("/apis/apps/v1", kApps);
    fake->AddJson("/apis/events.k8s.io/v1", kEvents);
    if (kopf_answers) {
      fake->AddJson("/apis/kopf.dev/v1", kKopfV1);
    } else {
      fake->AddJson("/apis/kopf.dev/v1", kUnavailable, 503);
    }
    fake->AddJson("/apis/kopf.dev/v1beta1", kKopfV1beta1);
    fake->AddJson("/apis/other.dev/v1", kOther);
    api = TestApiClient(std::move(f), &clock);
    discovery = std::make_unique<Discovery>(api.get());
  }
  runtime::FakeClock clock;
  FakeHttpClient* fake;
  std::unique_ptr<ApiClient> api;
  std::unique_ptr<Discovery> discovery;
};

TEST(DiscoveryTest, ResolvesEveryFormUsersWrite) {
  Fixture f;
  for (const char* name :
       {"kopfexamples", "kopfexample", "KopfExample", "kex", "kopfexes",
        "KopfExample.kopf.dev", "kopfexamples.v1.kopf.dev"}) {
    auto r = f.discovery->Resolve(name);
    ASSERT_TRUE(r.ok()) << name << ": " << r.status();
    EXPECT_EQ(r->FullName(), "kopfexamples.v1.kopf.dev") << name;
    EXPECT_TRUE(r->has_status);
    EXPECT_TRUE(r->namespaced);
  }
  auto d = f.discovery->Resolve("deployments.v1.apps");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->ApiVersion(), "apps/v1");
  EXPECT_EQ(d->ObjectPath("ns1", "web", "status"),
            "/apis/apps/v1/namespaces/ns1/deployments/web/status");
  auto p = f.discovery->Resolve("pods");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->CollectionPath(""), "/api/v1/pods");
  EXPECT_EQ(p->CollectionPath("x"), "/api/v1/namespaces/x/pods");
  auto ns = f.discovery->Resolve("ns");
  ASSERT_TRUE(ns.ok());
  EXPECT_FALSE(ns->namespaced);
  EXPECT_EQ(ns->CollectionPath("ignored"), "/api/v1/namespaces");
}

TEST(DiscoveryTest, ExplicitVersionOverridesThePreferredOne) {
  Fixture f;
  auto r = f.discovery->Resolve("kopfexamples.v1beta1.kopf.dev");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version, "v1beta1");
  EXPECT_FALSE(r->has_status);
}

TEST(DiscoveryTest, CoreGroupWinsAndOtherwiseAmbiguityIsAnError) {
  Fixture f;
  auto ev = f.discovery->Resolve("events");
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->group, "");
  auto w = f.discovery->Resolve("widgets");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(w.status().message(),
              HasSubstr("widgets.v1.kopf.dev, widgets.v1.other.dev"));
  auto q = f.discovery->Resolve("widgets.other.dev");
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->namespaced);
}

TEST(DiscoveryTest, UnknownNameRefetchesOnceThenFails) {
  Fixture f;
  ASSERT_TRUE(f.discovery->Resolve("pods").ok());
  size_t before = f.fake->requests().size();
  auto r = f.discovery->Resolve("kopfexampels");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(),
              HasSubstr("unknown resource 'kopfexampels'"));
  // A miss refreshes discovery (a CRD may have appeared).
  EXPECT_GT(f.fake->requests().size(), before);
}

TEST(DiscoveryTest, AGroupThatDoesNotAnswerMakesAMissTransientNotFinal) {
  // An API server that is restarting answers 503 for some groups: a name
  // that group could hold is not "unknown" but not resolvable yet.
  Fixture f(/*kopf_answers=*/false);
  auto r = f.discovery->Resolve("kopfexamples");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(r.status().message(),
              HasSubstr("cannot resolve 'kopfexamples' yet: discovery of "
                        "kopf.dev/v1 failed"));
  // Names in groups that answered still resolve; a name qualified with a
  // group that answered is a real miss.
  EXPECT_TRUE(f.discovery->Resolve("deployments").ok());
  auto other = f.discovery->Resolve("gadgets.other.dev");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), absl::StatusCode::kNotFound);
  // A transient miss is asked again: the group answers once it is back.
  f.fake->AddJson("/apis/kopf.dev/v1", kKopfV1);
  size_t before = f.fake->requests().size();
  EXPECT_FALSE(f.discovery->Resolve("kopfexamples").ok());  // The last 503.
  EXPECT_GT(f.fake->requests().size(), before);
  auto back = f.discovery->Resolve("kopfexamples");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->FullName(), "kopfexamples.v1.kopf.dev");
}

TEST(DiscoveryTest, CouldDenoteFollowsTheResolutionRules) {
  ResourceInfo r;
  r.group = "kopf.dev";
  r.version = "v1";
  r.plural = "kopfexamples";
  r.singular = "kopfexample";
  r.kind = "KopfExample";
  r.short_names = {"kex"};
  for (const char* yes :
       {"kopfexamples", "kex", "KopfExample", "kopfexamples.kopf.dev",
        "kopfexamples.v1.kopf.dev"}) {
    EXPECT_TRUE(CouldDenote(yes, r)) << yes;
  }
  for (const char* no : {"pods", "kopfexamples.other.dev",
                         "kopfexamples.v2.kopf.dev", "kopfexamples.v1"}) {
    EXPECT_FALSE(CouldDenote(no, r)) << no;
  }
}

TEST(ResourceNamesFlagTest, SplitsAtCommasAndJoinsBack) {
  ResourceNames list;
  std::string error;
  ASSERT_TRUE(
      absl::ParseFlag("kopfexamples,deployments.v1.apps", &list, &error))
      << error;
  EXPECT_THAT(list.names,
              ::testing::ElementsAre("kopfexamples", "deployments.v1.apps"));
  EXPECT_EQ(absl::UnparseFlag(list), "kopfexamples,deployments.v1.apps");
  ASSERT_TRUE(absl::ParseFlag("", &list, &error)) << error;
  EXPECT_TRUE(list.names.empty());
  EXPECT_EQ(absl::UnparseFlag(list), "");
}

TEST(ResourceNamesFlagTest, AnEmptyEntryIsAnErrorNamingItsPosition) {
  ResourceNames list{{"pods"}};
  std::string error;
  EXPECT_FALSE(absl::ParseFlag("pods,,configmaps", &list, &error));
  EXPECT_EQ(error, "entry 2 is empty");
  EXPECT_FALSE(absl::ParseFlag(" ", &list, &error));
  EXPECT_EQ(error, "entry 1 is empty");
  EXPECT_FALSE(absl::ParseFlag("pods,", &list, &error));
  EXPECT_EQ(error, "entry 2 is empty");
  EXPECT_THAT(list.names, ::testing::ElementsAre("pods")) << "unchanged";
}

}  // namespace
}  // namespace herald::kube
