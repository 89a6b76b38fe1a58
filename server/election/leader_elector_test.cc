#include "server/election/leader_elector.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/kube/fake_http_client.h"

namespace herald::election {
namespace {

using kube::HttpResponse;
using nlohmann::json;

constexpr char kObject[] =
    "/apis/coordination.k8s.io/v1/namespaces/ns/leases/herald";
constexpr char kCollection[] =
    "/apis/coordination.k8s.io/v1/namespaces/ns/leases";

std::string LeaseJson(
    const std::string& holder, const std::string& rv, int transitions = 0,
    int duration = 15, const std::string& renew = "2001-01-01T00:00:00.000000Z",
    const std::string& acquire = "2001-01-01T00:00:00.000000Z") {
  return json{
      {"apiVersion", "coordination.k8s.io/v1"},
      {"kind", "Lease"},
      {"metadata",
       {{"name", "herald"}, {"namespace", "ns"}, {"resourceVersion", rv}}},
      {"spec",
       {{"holderIdentity", holder},
        {"leaseDurationSeconds", duration},
        {"acquireTime", acquire},
        {"renewTime", renew},
        {"leaseTransitions", transitions}}}}
      .dump();
}

HttpResponse Ok(const std::string& body, int status = 200) {
  return HttpResponse{status, body, ""};
}
HttpResponse Conflict() {
  return HttpResponse{
      409,
      R"({"kind":"Status","message":"Operation cannot be fulfilled on leases.coordination.k8s.io \"herald\": the object has been modified","code":409})",
      ""};
}
HttpResponse NotFound() {
  return HttpResponse{404, R"({"kind":"Status","message":"not found"})", ""};
}

struct Fixture {
  explicit Fixture(std::string identity = "me") {
    auto f = std::make_unique<kube::FakeHttpClient>();
    http = f.get();
    api = kube::TestApiClient(std::move(f), &clock);
    lease = std::make_unique<Lease>(api.get(), "ns", "herald");
    config.identity = std::move(identity);
  }
  std::unique_ptr<LeaderElector> Elector(LeaderElector::Callbacks cb = {}) {
    return std::make_unique<LeaderElector>(lease.get(), config, std::move(cb),
                                           &clock, &clock, &gate);
  }
  std::vector<kube::HttpRequest> Writes() {
    std::vector<kube::HttpRequest> out;
    for (auto& r : http->requests()) {
      if (r.method != "GET") out.push_back(r);
    }
    return out;
  }
  runtime::FakeClock clock;
  kube::FakeHttpClient* http;
  std::unique_ptr<kube::ApiClient> api;
  std::unique_ptr<Lease> lease;
  kube::WriteGate gate{&clock};
  ElectionConfig config;
};

TEST(LeaseTest, ParsesAndNamesWhatIsWrong) {
  auto s = ParseLease(LeaseJson("a", "7", 2, 15, "r", "q"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->resource_version, "7");
  EXPECT_EQ(s->record.holder, "a");
  EXPECT_EQ(s->record.transitions, 2);
  EXPECT_EQ(s->record.lease_duration_seconds, 15);
  EXPECT_EQ(s->record.renew_time, "r");
  EXPECT_EQ(s->record.acquire_time, "q");
  auto bad = ParseLease(
      R"({"metadata":{"resourceVersion":"1"},"spec":{"leaseDurationSeconds":"x"}})");
  EXPECT_THAT(bad.status().message(),
              ::testing::HasSubstr("spec.leaseDurationSeconds"));
  EXPECT_FALSE(ParseLease("[]").ok());
  EXPECT_EQ(MicroTime(absl::FromUnixMicros(1'700'000'000'123'456)),
            "2023-11-14T22:13:20.123456Z");
}

TEST(LeaderElectorTest, AcquireCreatesTheLeaseWhenThereIsNone) {
  Fixture f;
  f.http->Add("GET", kObject, NotFound());
  f.http->Add("POST", kCollection, Ok(LeaseJson("me", "1"), 201));
  auto e = f.Elector();
  EXPECT_TRUE(e->TryAcquireOrRenew(absl::Seconds(10)));
  auto writes = f.Writes();
  ASSERT_EQ(writes.size(), 1u);
  json body = json::parse(writes[0].body);
  EXPECT_EQ(body["spec"]["holderIdentity"], "me");
  EXPECT_EQ(body["spec"]["leaseDurationSeconds"], 15);
  EXPECT_EQ(body["spec"]["leaseTransitions"], 0);
  EXPECT_EQ(body["spec"]["renewTime"], MicroTime(f.clock.Now()));
  EXPECT_EQ(writes[0].timeout, absl::Seconds(10));
  EXPECT_EQ(e->Status().holder, "me");
}

TEST(LeaderElectorTest, RenewCarriesTheResourceVersionAndKeepsAcquireTime) {
  Fixture f;
  f.http->Add("GET", kObject, Ok(LeaseJson("me", "5", 3, 15, "r0", "a0")));
  f.http->Add("PUT", kObject, Ok(LeaseJson("me", "6", 3)));
  auto e = f.Elector();
  EXPECT_TRUE(e->TryAcquireOrRenew(absl::Seconds(10)));
  auto writes = f.Writes();
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0].method, "PUT");
  json body = json::parse(writes[0].body);
  EXPECT_EQ(body["metadata"]["resourceVersion"], "5");
  EXPECT_EQ(body["spec"]["acquireTime"], "a0");
  EXPECT_EQ(body["spec"]["leaseTransitions"], 3);
  EXPECT_EQ(body["spec"]["renewTime"], MicroTime(f.clock.Now()));
}

TEST(LeaderElectorTest, AForeignLeaseExpiresOnTheLocalClockNotItsRenewTime) {
  Fixture f;
  // The holder's renewTime is years old (its clock, or ours, is off): it
  // does not count. What counts is when this process saw the record last
  // change.
  f.http->Add("GET", kObject, Ok(LeaseJson("other", "5", 1)));
  f.http->Add("PUT", kObject, Ok(LeaseJson("me", "9", 2)));
  auto e = f.Elector();
  EXPECT_FALSE(e->TryAcquireOrRenew(absl::Seconds(10)));
  f.clock.Advance(absl::Seconds(14));
  EXPECT_FALSE(e->TryAcquireOrRenew(absl::Seconds(10)));
  EXPECT_TRUE(f.Writes().empty());
  EXPECT_EQ(e->Status().holder, "other");
  f.clock.Advance(absl::Seconds(1));  // 15 s unchanged: expired.
  EXPECT_TRUE(e->TryAcquireOrRenew(absl::Seconds(10)));
  auto writes = f.Writes();
  ASSERT_EQ(writes.size(), 1u);
  json body = json::parse(writes[0].body);
  EXPECT_EQ(body["spec"]["holderIdentity"], "me");
  EXPECT_EQ(body["spec"]["leaseTransitions"], 2);
  EXPECT_EQ(body["metadata"]["resourceVersion"], "5");
  EXPECT_EQ(e->Status().holder, "me");
}

TEST(LeaderElectorTest, TheHoldersRenewalRestartsTheExpiry) {
  Fixture f;
  f.http->Add("GET", kObject, Ok(LeaseJson("other", "5", 0, 15, "r1")));
  f.http->Add("GET", kObject, Ok(LeaseJson("other", "6", 0, 15, "r2")));
  auto e = f.Elector();
  EXPECT_FALSE(e->TryAcquireOrRenew(absl::Seconds(10)));
  f.clock.Advance(absl::Seconds(10));
  EXPECT_FALSE(e->TryAcquireOrRenew(absl::Seconds(10)));  // Renewed: seen.
  f.clock.Advance(absl::Seconds(14));  // 24 s after the first sight.
  EXPECT_FALSE(e->TryAcquireOrRenew(absl::Seconds(10)));
  EXPECT_TRUE(f.Writes().empty());
}

TEST(LeaderElectorTest, AReleasedLeaseIsTakenAtOnce) {
  Fixture f;
  f.http->Add("GET", kObject, Ok(LeaseJson("", "5", 4, 1)));
  f.http->Add("PUT", kObject, Ok(LeaseJson("me", "6", 5)));
  auto e = f.Elector();
  EXPECT_TRUE(e->TryAcquireOrRenew(absl::Seconds(10)));
  ASSERT_EQ(f.Writes().size(), 1u);
}

TEST(LeaderElectorTest, ALostRaceIsAConflictNotALease) {
  Fixture f;
  f.http->Add("GET", kObject, Ok(LeaseJson("", "5", 4, 1)));
  f.http->Add("PUT", kObject, Conflict());
  f.http->Add("GET", kObject, NotFound());
  f.http->Add("POST", kCollection, Conflict());
  auto e = f.Elector();
  EXPECT_FALSE(e->TryAcquireOrRenew(absl::Seconds(10)));
  EXPECT_FALSE(e->TryAcquireOrRenew(absl::Seconds(10)));  // Create raced too.
  EXPECT_FALSE(e->Leading());
  EXPECT_EQ(f.Writes().size(), 2u);
}

TEST(LeaderElectorTest, RunLeadsThenStopsAtTheRenewDeadline) {
  Fixture f;
  const absl::Time t0 = f.clock.Now();
  f.http->Add("GET", kObject, NotFound());
  f.http->Add("GET", kObject, Ok(LeaseJson("me", "1")));
  // Every read after the first renewal fails: the API server is gone.
  f.http->Add("GET", kObject,
              HttpResponse{500, R"({"kind":"Status","message":"down"})", ""});
  f.http->Add("POST", kCollection, Ok(LeaseJson("me", "1"), 201));
  f.http->Add("PUT", kObject, Ok(LeaseJson("me", "2")));
  absl::Time started = absl::InfinitePast(), stopped = absl::InfinitePast();
  bool open_while_leading = false, leading_then = false;
  std::unique_ptr<LeaderElector> e;
  LeaderElector::Callbacks cb;
  cb.started_leading = [&] {
    started = f.clock.Now();
    open_while_leading = f.gate.open();
    leading_then = e->Leading();
  };
  cb.stopped_leading = [&] { stopped = f.clock.Now(); };
  e = f.Elector(cb);
  e->Run();  // Returns once the lease is lost.
  EXPECT_EQ(started, t0);
  EXPECT_TRUE(open_while_leading);
  EXPECT_TRUE(leading_then);
  // Renewed at t0 + 2 s; the deadline counts from then.
  EXPECT_EQ(stopped, t0 + absl::Seconds(12));
  EXPECT_FALSE(e->Leading());
  EXPECT_FALSE(f.gate.open());
  // No request was allowed to outlive the deadline.
  for (const auto& r : f.http->requests()) {
    EXPECT_LE(r.timeout, absl::Seconds(10)) << r.method;
  }
}

TEST(LeaderElectorTest, LeadingEndsAtTheDeadlineWithoutTheElectorsThread) {
  // A process stopped (SIGSTOP) past its renew deadline: when it wakes, the
  // clock has moved and Leading() and the gate are false before the
  // elector's thread runs again.
  Fixture f;
  f.http->Add("GET", kObject, NotFound());
  f.http->Add("POST", kCollection, Ok(LeaseJson("me", "1"), 201));
  absl::Notification leading, resume;
  std::unique_ptr<LeaderElector> e;
  LeaderElector::Callbacks cb;
  cb.started_leading = [&] {
    leading.Notify();
    resume.WaitForNotification();  // The elector's thread is "stopped".
  };
  e = f.Elector(cb);
  e->Start();
  leading.WaitForNotification();
  EXPECT_TRUE(e->Leading());
  EXPECT_TRUE(f.gate.open());
  f.clock.Advance(absl::Seconds(10));
  EXPECT_FALSE(e->Leading());
  EXPECT_FALSE(f.gate.open());
  EXPECT_FALSE(e->Status().leading);
  resume.Notify();
  e->Stop(true);  // No longer leading: nothing to release.
  for (const auto& r : f.Writes()) EXPECT_NE(r.method, "PUT");
}

TEST(LeaderElectorTest, StopReleasesAHeldLease) {
  Fixture f;
  f.http->Add("GET", kObject, NotFound());
  f.http->Add("GET", kObject, Ok(LeaseJson("me", "1", 2)));
  f.http->Add("POST", kCollection, Ok(LeaseJson("me", "1", 2), 201));
  f.http->Add("PUT", kObject, Ok(LeaseJson("me", "1", 2)));
  absl::Notification leading;
  LeaderElector::Callbacks cb;
  cb.started_leading = [&] { leading.Notify(); };
  auto e = f.Elector(cb);
  e->Start();
  leading.WaitForNotification();
  e->Stop(true);
  auto writes = f.Writes();
  ASSERT_FALSE(writes.empty());
  json body = json::parse(writes.back().body);
  EXPECT_EQ(writes.back().method, "PUT");
  EXPECT_EQ(body["spec"]["holderIdentity"], "");
  EXPECT_EQ(body["spec"]["leaseDurationSeconds"], 1);
  EXPECT_EQ(body["spec"]["leaseTransitions"], 2);
  EXPECT_EQ(body["metadata"]["resourceVersion"], "1");
  EXPECT_FALSE(e->Leading());
  EXPECT_FALSE(f.gate.open());
}

TEST(LeaderElectorTest, AStandbyReleasesNothing) {
  Fixture f("standby");
  f.http->Add("GET", kObject, Ok(LeaseJson("other", "5")));
  auto e = f.Elector();
  EXPECT_FALSE(e->TryAcquireOrRenew(absl::Seconds(10)));
  e->Stop(true);
  EXPECT_TRUE(f.Writes().empty());
}

}  // namespace
}  // namespace herald::election
