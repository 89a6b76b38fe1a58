#include "server/kube/resource_watch.h"

#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/kube/fake_http_client.h"

namespace herald::kube {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);  // 22:13:20Z

WatcherStatus Status(const std::string& rv, bool backing_off = false,
                     const std::string& error = "",
                     absl::Duration at = absl::ZeroDuration()) {
  WatcherStatus s;
  s.resource_version = rv;
  s.backing_off = backing_off;
  s.last_error = error;
  if (!error.empty()) s.last_error_time = kT0 + at;
  return s;
}

TEST(ResourceWatchSummarizeTest, OneWatcherShowsItsOwnVersionAndError) {
  auto h = ResourceWatch::Summarize({{"", Status("42")}}, nullptr, {});
  EXPECT_FALSE(h.backing_off);
  EXPECT_EQ(h.resource_version, "42");
  EXPECT_EQ(h.last_error, "");

  h = ResourceWatch::Summarize(
      {{"", Status("42", true, "watching failed: connection refused")}},
      nullptr, {});
  EXPECT_TRUE(h.backing_off);
  EXPECT_EQ(h.last_error,
            "2023-11-14T22:13:20Z watching failed: connection refused");
}

TEST(ResourceWatchSummarizeTest, NamesTheNamespaceBackingOff) {
  std::map<std::string, WatcherStatus> w = {
      {"ns1", Status("5", false, "watching failed: reset", absl::Seconds(9))},
      {"ns2", Status("", true, "listing failed: forbidden", absl::Seconds(3))},
      {"ns3", Status("7")}};
  auto h = ResourceWatch::Summarize(w, nullptr, {});
  EXPECT_TRUE(h.backing_off);
  EXPECT_EQ(h.resource_version, "ns1=5,ns3=7");
  // A namespace backing off wins over a later failure that recovered.
  EXPECT_EQ(h.last_error,
            "2023-11-14T22:13:23Z namespace ns2: listing failed: forbidden");

  w["ns3"] = Status("7", true, "watching failed: HTTP 500", absl::Seconds(4));
  h = ResourceWatch::Summarize(w, nullptr, {});
  EXPECT_EQ(h.last_error,
            "2023-11-14T22:13:24Z namespace ns3: watching failed: HTTP 500 "
            "(and 1 more backing off)");

  // All recovered: the latest failure, still named.
  w["ns2"].backing_off = false;
  w["ns3"].backing_off = false;
  h = ResourceWatch::Summarize(w, nullptr, {});
  EXPECT_FALSE(h.backing_off);
  EXPECT_EQ(h.last_error,
            "2023-11-14T22:13:29Z namespace ns1: watching failed: reset");
}

TEST(ResourceWatchSummarizeTest, CountsTheNamespaceWatchAndTheResolution) {
  WatcherStatus namespaces =
      Status("99", true, "listing failed: forbidden", absl::Seconds(1));
  auto h = ResourceWatch::Summarize({{"ns1", Status("5")}}, &namespaces, {});
  EXPECT_TRUE(h.backing_off);
  EXPECT_EQ(h.resource_version, "5");  // Not the namespaces' version.
  EXPECT_EQ(h.last_error,
            "2023-11-14T22:13:21Z namespaces: listing failed: forbidden");

  h = ResourceWatch::Summarize(
      {}, nullptr,
      Status("", true, "resolving 'kex' failed: connection refused"));
  EXPECT_TRUE(h.backing_off);
  EXPECT_EQ(h.resource_version, "");
  EXPECT_EQ(h.last_error,
            "2023-11-14T22:13:20Z resolving 'kex' failed: connection refused");
}

// A FakeClock whose sleeps last until the sleeper is stopped: a watcher that
// backs off stays there while the test looks.
class BlockingClock : public runtime::FakeClock {
 public:
  bool SleepFor(absl::Duration, absl::Notification* stop) override {
    {
      absl::MutexLock lock(&mu_);
      ++sleepers_;
      slept_.SignalAll();
    }
    if (stop != nullptr) stop->WaitForNotification();
    return false;
  }
  void AwaitSleepers(int n) {
    absl::MutexLock lock(&mu_);
    while (sleepers_ < n) slept_.Wait(&mu_);
  }

 private:
  absl::Mutex mu_;
  absl::CondVar slept_;
  int sleepers_ ABSL_GUARDED_BY(mu_) = 0;
};

// Holds the watch on the event of an object named "held" until released.
class Holder : public WatchHandler {
 public:
  void OnEvent(const ResourceInfo&, const WatchEvent& e) override {
    if (e.object->key.name != "held") return;
    arrived.Notify();
    release.WaitForNotification();
  }
  absl::Notification arrived;
  absl::Notification release;
};

TEST(ResourceWatchTest, HealthNamesTheNamespaceWhoseListingIsForbidden) {
  BlockingClock clock;
  auto f = std::make_unique<FakeHttpClient>();
  FakeHttpClient* fake = f.get();
  fake->AddJson("/api", R"({"kind":"APIVersions","versions":["v1"]})");
  fake->AddJson("/api/v1", R"({"kind":"APIResourceList","resources":[]})");
  fake->AddJson("/apis", R"({"kind":"APIGroupList","groups":[
 {"name":"kopf.dev","versions":[{"groupVersion":"kopf.dev/v1","version":"v1"}],
  "preferredVersion":{"groupVersion":"kopf.dev/v1","version":"v1"}}]})");
  fake->AddJson("/apis/kopf.dev/v1", R"({"kind":"APIResourceList","resources":[
 {"name":"kopfexamples","singularName":"kopfexample","namespaced":true,
  "kind":"KopfExample","verbs":["list","watch"]}]})");
  const std::string base = "/apis/kopf.dev/v1/namespaces/";
  fake->AddStream(
      base + "ns1/kopfexamples?limit=",
      {R"({"kind":"List","metadata":{"resourceVersion":"5"},"items":[]})"});
  fake->AddStream(
      base + "ns1/kopfexamples?watch=1",
      {R"({"type":"ADDED","object":{"metadata":{"name":"held","namespace":"ns1","resourceVersion":"6"}}})"
       "\n"});
  fake->AddStreamStatus(
      base + "ns2/kopfexamples?limit=", 403,
      R"({"kind":"Status","code":403,"message":"kopfexamples is forbidden in ns2"})");
  std::unique_ptr<ApiClient> api = TestApiClient(std::move(f), &clock);
  Discovery discovery(api.get());
  Holder holder;
  auto scope = NamespaceScope::Parse("ns1,ns2");
  ASSERT_TRUE(scope.ok()) << scope.status();
  ResourceWatch watch(api.get(), &discovery, "kopfexamples", *scope, &holder);
  EXPECT_FALSE(watch.health().backing_off);
  EXPECT_EQ(watch.health().last_error, "");
  watch.Start();
  holder.arrived.WaitForNotification();  // ns1 is listed and watching.
  clock.AwaitSleepers(1);                // ns2 is backing off.

  const ResourceWatch::Health h = watch.health();
  EXPECT_TRUE(h.backing_off);
  EXPECT_EQ(h.resource_version, "ns1=5");
  EXPECT_THAT(h.last_error,
              StartsWith("2023-11-14T22:13:20Z namespace ns2: listing failed: "
                         "access is forbidden"));
  EXPECT_THAT(h.last_error, HasSubstr("kopfexamples is forbidden in ns2"));
  holder.release.Notify();
  watch.Stop();
}

}  // namespace
}  // namespace herald::kube
