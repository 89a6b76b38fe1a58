#include "server/kube/watcher.h"

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/kube/fake_http_client.h"

namespace herald::kube {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kList[] = "/apis/kopf.dev/v1/namespaces/ns1/kopfexamples?limit=";
constexpr char kWatch[] =
    "/apis/kopf.dev/v1/namespaces/ns1/kopfexamples?watch=1&"
    "allowWatchBookmarks=true&resourceVersion=";

std::string Obj(const std::string& name, const std::string& rv,
                const std::string& extra = "") {
  return absl::StrCat(R"({"apiVersion":"kopf.dev/v1","kind":"KopfExample",)",
                      R"("metadata":{"name":")", name,
                      R"(","namespace":"ns1","uid":"uid-)", name,
                      R"(","resourceVersion":")", rv,
                      R"(","managedFields":[{"manager":"kubectl"}]},)",
                      R"("spec":{"v":")", rv, R"("})", extra, "}");
}

std::string ListPage(const std::vector<std::string>& items,
                     const std::string& rv, const std::string& cont = "") {
  std::string out = absl::StrCat(
      R"({"kind":"KopfExampleList","metadata":{"resourceVersion":")", rv,
      R"(","continue":")", cont, R"("},"items":[)");
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ",";
    out += items[i];
  }
  return out + "]}";
}

std::string Event(const std::string& type, const std::string& object) {
  return absl::StrCat(R"({"type":")", type, R"(","object":)", object, "}\n");
}

ResourceInfo KopfExamples() {
  ResourceInfo r;
  r.group = "kopf.dev";
  r.version = "v1";
  r.plural = "kopfexamples";
  r.kind = "KopfExample";
  r.namespaced = true;
  return r;
}

// Records events; stops the watcher after the given number of listings.
class Recorder : public WatchHandler {
 public:
  void OnEvent(const ResourceInfo&, const WatchEvent& e) override {
    events.push_back(absl::StrCat(
        WatchEventTypeName(e.type), " ", e.object->key.name, "@",
        e.object->resource_version, e.from_listing ? " (list)" : ""));
    jsons.push_back(e.object->json);
    if (e.object->key.name == stop_on_name && watcher) watcher->Stop();
  }
  void OnListed(const ResourceInfo&, const std::string&) override {
    if (++listings == stop_after_listings && watcher) watcher->Stop();
  }
  std::vector<std::string> events;
  std::vector<std::string> jsons;
  // Stops the watcher when an object of this name arrives.
  std::string stop_on_name;
  int listings = 0;
  int stop_after_listings = 1000;
  Watcher* watcher = nullptr;
};

// A FakeClock that calls `on_sleep` before each sleep: what a watcher
// shows while it waits.
class ObservingClock : public runtime::FakeClock {
 public:
  bool SleepFor(absl::Duration d, absl::Notification* stop) override {
    if (on_sleep) on_sleep();
    return FakeClock::SleepFor(d, stop);
  }
  std::function<void()> on_sleep;
};

struct Fixture {
  Fixture() {
    auto f = std::make_unique<FakeHttpClient>();
    fake = f.get();
    api = TestApiClient(std::move(f), &clock);
    watcher = std::make_unique<Watcher>(api.get(), KopfExamples(), "ns1",
                                        &store, &rec);
    rec.watcher = watcher.get();
  }
  std::vector<std::string> Targets() {
    std::vector<std::string> out;
    for (const auto& r : fake->requests()) out.push_back(r.target);
    return out;
  }
  ObservingClock clock;
  FakeHttpClient* fake;
  std::unique_ptr<ApiClient> api;
  cache::ObjectStore store;
  Recorder rec;
  std::unique_ptr<Watcher> watcher;
};

TEST(WatcherTest, PagedListThenWatchWithBookmarksAndReconnect) {
  Fixture f;
  f.fake->AddStream(kList, {ListPage({Obj("a", "10")}, "20", "tok+/=")});
  f.fake->AddStream(absl::StrCat(kList, "500&continue=tok%2B%2F%3D"),
                    {ListPage({Obj("b", "11")}, "20")});
  // A watch stream cut mid-event, then ending (server timeout).
  std::string stream =
      Event("ADDED", Obj("c", "21")) + Event("MODIFIED", Obj("a", "22")) +
      R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"30"}}})"
      "\n";
  f.fake->AddStream(
      absl::StrCat(kWatch, "20&"),
      {stream.substr(0, 17), stream.substr(17, 100), stream.substr(117)});
  // The reconnect resumes from the bookmark's version; 410 there leads to a
  // relist.
  f.fake->AddStream(
      absl::StrCat(kWatch, "30&"),
      {Event("DELETED", Obj("b", "31")),
       R"json({"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old resource version: 31 (40)"}})json"
       "\n"});
  // The relist: a unchanged, c changed, d new. Stop after it.
  f.fake->AddStream(
      kList,
      {ListPage({Obj("a", "22"), Obj("c", "41"), Obj("d", "42")}, "45")});
  f.rec.stop_after_listings = 2;
  f.watcher->Run();

  EXPECT_THAT(f.rec.events,
              ElementsAre("ADDED a@10 (list)", "ADDED b@11 (list)",
                          "ADDED c@21", "MODIFIED a@22", "DELETED b@31",
                          "MODIFIED c@41 (list)", "ADDED d@42 (list)"));
  EXPECT_EQ(f.store.size(), 3u);
  EXPECT_EQ(f.watcher->resource_version(), "45");
  EXPECT_EQ(f.watcher->list_count(), 2);
  // managedFields are stripped and the JSON is minified.
  EXPECT_THAT(f.rec.jsons[0], ::testing::Not(HasSubstr("managedFields")));
  EXPECT_THAT(f.rec.jsons[0], ::testing::Not(HasSubstr(" ")));
  auto targets = f.Targets();
  ASSERT_GE(targets.size(), 5u);
  EXPECT_THAT(targets[2], HasSubstr("resourceVersion=20&timeoutSeconds="));
  EXPECT_THAT(targets[3], HasSubstr("resourceVersion=30&timeoutSeconds="));
}

// Each watcher draws its own jitter: watches started together do not all ask
// for the same timeout, and so do not reconnect in lockstep.
TEST(WatcherTest, ServerTimeoutJitterDiffersBetweenWatchers) {
  std::set<int64_t> timeouts;
  for (int i = 0; i < 5; ++i) {
    Fixture f;
    f.fake->AddStream(kList, {ListPage({}, "20")});
    f.fake->AddStream(absl::StrCat(kWatch, "20&"),
                      {Event("ADDED", Obj("x", "21"))});
    f.rec.stop_on_name = "x";
    f.watcher->Run();
    int64_t timeout = -1;
    for (const auto& t : f.Targets()) {
      auto at = t.find("timeoutSeconds=");
      if (at == std::string::npos) continue;
      ASSERT_TRUE(absl::SimpleAtoi(t.substr(at + 15), &timeout)) << t;
    }
    // The default 5 minutes plus up to 100%.
    EXPECT_GE(timeout, 300);
    EXPECT_LE(timeout, 600);
    timeouts.insert(timeout);
  }
  EXPECT_GT(timeouts.size(), 1u);
}

TEST(WatcherTest, RelistAfterHttp410EmitsOnlyDifferences) {
  Fixture f;
  f.fake->AddStream(
      kList, {ListPage({Obj("a", "1"), Obj("b", "2"), Obj("c", "3")}, "5")});
  f.fake->AddStreamStatus(absl::StrCat(kWatch, "5&"), 410,
                          R"({"kind":"Status","code":410,"message":"gone"})");
  f.fake->AddStream(kList, {ListPage({Obj("a", "1"), Obj("c", "7")}, "9")});
  f.rec.stop_after_listings = 2;
  f.watcher->Run();
  EXPECT_THAT(
      f.rec.events,
      ElementsAre("ADDED a@1 (list)", "ADDED b@2 (list)", "ADDED c@3 (list)",
                  "MODIFIED c@7 (list)", "DELETED b@2 (list)"));
}

TEST(WatcherTest, RetriesListingWithBackoffAndStops) {
  Fixture f;
  f.fake->AddStreamStatus(kList, 503, "unavailable");
  f.fake->AddStreamStatus(
      kList, 403, R"({"kind":"Status","code":403,"message":"forbidden"})");
  f.fake->AddStream(kList, {ListPage({Obj("a", "1")}, "5")});
  f.rec.stop_after_listings = 1;
  f.watcher->Run();
  EXPECT_THAT(f.rec.events, ElementsAre("ADDED a@1 (list)"));
  // Backed off 1 s, then 1 s, on the fake clock.
  EXPECT_EQ(f.clock.Slept(), absl::Seconds(2));
}

TEST(WatcherTest, HonoursRetryAfterOnTooManyRequests) {
  Fixture f;
  f.fake->AddStreamStatus(kList, 429, R"({"kind":"Status","code":429})", "7");
  f.fake->AddStream(kList, {ListPage({Obj("a", "1")}, "5")});
  f.rec.stop_after_listings = 1;
  f.watcher->Run();
  EXPECT_THAT(f.rec.events, ElementsAre("ADDED a@1 (list)"));
  EXPECT_EQ(f.clock.Slept(), absl::Seconds(7));
}

TEST(WatcherTest, WatchNetworkErrorsResumeFromTheLastVersion) {
  Fixture f;
  f.fake->AddStream(kList, {ListPage({}, "5")});
  f.fake->AddStream(absl::StrCat(kWatch, "5&"), {Event("ADDED", Obj("a", "6"))},
                    absl::UnavailableError("connection reset"));
  f.fake->AddStream(absl::StrCat(kWatch, "6&"), {Event("ADDED", Obj("b", "7"))},
                    absl::DeadlineExceededError("idle"));
  f.fake->AddStreamStatus(absl::StrCat(kWatch, "7&"), 410, "gone");
  f.fake->AddStream(kList, {ListPage({Obj("a", "6"), Obj("b", "7")}, "7")});
  f.rec.stop_after_listings = 2;
  f.watcher->Run();
  // Nothing is repeated: the relist finds what the watch already delivered.
  EXPECT_THAT(f.rec.events, ElementsAre("ADDED a@6", "ADDED b@7"));
  EXPECT_EQ(f.clock.Slept(), absl::Seconds(1));  // Only after the reset.
}

// Every watch request that ended, however, and was opened again counts as a
// restart of its resource; the first one does not.
TEST(WatcherTest, CountsWatchRestartsByResource) {
  Fixture f;
  metrics::Registry registry;
  WatchOptions options;
  options.restarts = registry.AddCounter("restarts_total", "R.", {"resource"});
  f.watcher = std::make_unique<Watcher>(f.api.get(), KopfExamples(), "ns1",
                                        &f.store, &f.rec, options);
  f.rec.watcher = f.watcher.get();
  f.fake->AddStream(kList, {ListPage({}, "5")});
  f.fake->AddStream(absl::StrCat(kWatch, "5&"), {Event("ADDED", Obj("a", "6"))},
                    absl::UnavailableError("connection reset"));
  f.fake->AddStream(absl::StrCat(kWatch, "6&"),
                    {Event("ADDED", Obj("b", "7"))});
  f.fake->AddStreamStatus(absl::StrCat(kWatch, "7&"), 410, "gone");
  f.fake->AddStream(kList, {ListPage({Obj("a", "6"), Obj("b", "7")}, "7")});
  f.rec.stop_after_listings = 2;
  f.watcher->Run();
  // A reset, a normal end and a 410: three watch requests ended and the
  // watcher went on; it stopped during the relist.
  const metrics::Counter* c =
      options.restarts->Find({"kopfexamples.v1.kopf.dev"});
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->Value(), 3);
}

TEST(WatcherTest, ReportsListingFailuresAndBacksOffUntilAListingSucceeds) {
  Fixture f;
  const absl::Time start = f.clock.Now();
  f.fake->AddStreamStatus(
      kList, 403,
      R"({"kind":"Status","code":403,"message":"kopfexamples is forbidden"})");
  f.fake->AddStreamStatus(kList, 503, "unavailable");
  f.fake->AddStream(kList, {ListPage({Obj("a", "1")}, "5")});
  std::vector<WatcherStatus> seen;
  f.clock.on_sleep = [&] { seen.push_back(f.watcher->status()); };
  EXPECT_FALSE(f.watcher->status().backing_off);
  EXPECT_EQ(f.watcher->status().last_error, "");
  EXPECT_EQ(f.watcher->status().last_error_time, absl::InfinitePast());
  f.rec.stop_after_listings = 1;
  f.watcher->Run();

  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen[0].backing_off);
  EXPECT_THAT(seen[0].last_error,
              HasSubstr("listing failed: access is forbidden"));
  EXPECT_THAT(seen[0].last_error, HasSubstr("kopfexamples is forbidden"));
  EXPECT_EQ(seen[0].last_error_time, start);
  EXPECT_EQ(seen[0].resource_version, "");
  EXPECT_TRUE(seen[1].backing_off);
  EXPECT_THAT(seen[1].last_error, HasSubstr("HTTP 503: unavailable"));
  EXPECT_THAT(seen[1].last_error, StartsWith("listing failed: "));
  EXPECT_EQ(seen[1].last_error_time, start + absl::Seconds(1));

  const WatcherStatus after = f.watcher->status();
  EXPECT_FALSE(after.backing_off);
  EXPECT_EQ(after.resource_version, "5");
  EXPECT_EQ(after.list_count, 1);
  // The last failure stays, with its time.
  EXPECT_EQ(after.last_error, seen[1].last_error);
  EXPECT_EQ(after.last_error_time, start + absl::Seconds(1));
}

TEST(WatcherTest, ReportsWatchFailuresAndBacksOffUntilAWatchIsAnswered) {
  Fixture f;
  f.fake->AddStream(kList, {ListPage({}, "5")});
  f.fake->AddStream(absl::StrCat(kWatch, "5&"), {Event("ADDED", Obj("a", "6"))},
                    absl::UnavailableError("connection refused"));
  f.fake->AddStreamStatus(
      absl::StrCat(kWatch, "6&"), 403,
      R"({"kind":"Status","code":403,"message":"watch is forbidden"})");
  // Answered, then an event: the watcher stops there.
  f.fake->AddStream(
      absl::StrCat(kWatch, "6&"),
      {R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"8"}}})"
       "\n",
       Event("ADDED", Obj("stop", "9"))});
  std::vector<WatcherStatus> seen;
  f.clock.on_sleep = [&] { seen.push_back(f.watcher->status()); };
  f.rec.stop_on_name = "stop";
  f.watcher->Run();

  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen[0].backing_off);
  EXPECT_EQ(seen[0].last_error, "watching failed: connection refused");
  EXPECT_EQ(seen[0].resource_version, "6");
  EXPECT_TRUE(seen[1].backing_off);
  EXPECT_THAT(seen[1].last_error,
              HasSubstr("watching failed: access is forbidden"));
  EXPECT_THAT(seen[1].last_error, HasSubstr("watch is forbidden"));

  const WatcherStatus after = f.watcher->status();
  EXPECT_FALSE(after.backing_off);
  EXPECT_EQ(after.resource_version, "9");
  EXPECT_EQ(after.last_error, seen[1].last_error);
}

TEST(IngestObjectTest, RejectsWhatIsNotAnObject) {
  EXPECT_FALSE(IngestObject("[1]", true).ok());
  EXPECT_FALSE(IngestObject("{\"metadata\":{}}", true).ok());
  EXPECT_FALSE(IngestObject("nope", true).ok());
  auto o =
      IngestObject(R"({"metadata":{"name":"x","managedFields":[]}})", false);
  ASSERT_TRUE(o.ok());
  EXPECT_THAT(o->json, HasSubstr("managedFields"));
}

}  // namespace
}  // namespace herald::kube
