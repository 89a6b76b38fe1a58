#include "server/kube/api_client.h"

#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/kube/fake_http_client.h"

namespace herald::kube {
namespace {

using ::testing::HasSubstr;

struct Fixture {
  Fixture() {
    auto f = std::make_unique<FakeHttpClient>();
    fake = f.get();
    api = TestApiClient(std::move(f), &clock);
  }
  runtime::FakeClock clock;
  FakeHttpClient* fake;
  std::unique_ptr<ApiClient> api;
};

TEST(ApiClientTest, RetriesServerErrorsWithBackoff) {
  Fixture f;
  f.fake->Add("GET", "/x", HttpResponse{503, "busy", ""});
  f.fake->Add("GET", "/x", HttpResponse{500, "oops", ""});
  f.fake->Add("GET", "/x", HttpResponse{200, "ok", ""});
  auto r = f.api->Get("/x");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "ok");
  EXPECT_EQ(f.fake->requests().size(), 3u);
  EXPECT_EQ(f.clock.Slept(), absl::Seconds(2));  // 1 s + 1 s.
}

TEST(ApiClientTest, RetriesNetworkErrors) {
  Fixture f;
  f.fake->Add("GET", "/x", absl::UnavailableError("connection refused"));
  f.fake->Add("GET", "/x", HttpResponse{200, "ok", ""});
  EXPECT_TRUE(f.api->Get("/x").ok());
}

TEST(ApiClientTest, HonoursRetryAfterOn429) {
  Fixture f;
  f.fake->Add("GET", "/x", HttpResponse{429, "slow down", "7"});
  f.fake->Add("GET", "/x", HttpResponse{200, "ok", ""});
  ASSERT_TRUE(f.api->Get("/x").ok());
  EXPECT_EQ(f.clock.Slept(), absl::Seconds(7));
}

TEST(ApiClientTest, GivesUpAfterMaxAttempts) {
  Fixture f;
  f.fake->Add("GET", "/x", HttpResponse{503, "busy", ""});
  auto r = f.api->Get("/x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(HttpStatusOf(r.status()), 503);
  EXPECT_EQ(f.fake->requests().size(), 8u);
  // 1+1+2+3+5+8+13 seconds between eight attempts.
  EXPECT_EQ(f.clock.Slept(), absl::Seconds(33));
}

TEST(ApiClientTest, ClientErrorsFailAtOnceWithTheServersMessage) {
  Fixture f;
  f.fake->Add(
      "PATCH", "/o",
      HttpResponse{
          409,
          R"({"kind":"Status","reason":"Conflict","message":)"
          R"("Operation cannot be fulfilled: the object has been modified"})",
          ""});
  auto r = f.api->Patch("/o", PatchType::kJson, "[]");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(HttpStatusOf(r.status()), 409);
  EXPECT_THAT(r.status().message(),
              HasSubstr("HTTP 409: Operation cannot be fulfilled: the object "
                        "has been modified"));
  EXPECT_EQ(f.fake->requests().size(), 1u);
  EXPECT_EQ(f.fake->requests()[0].content_type, "application/json-patch+json");

  f.fake->Add(
      "POST", "/c",
      HttpResponse{
          422,
          R"({"kind":"Status","reason":"Invalid","message":"spec.x: Invalid value"})",
          ""});
  auto c = f.api->Create("/c", "{}");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("spec.x: Invalid value"));

  f.fake->Add(
      "POST", "/d",
      HttpResponse{
          409,
          R"({"kind":"Status","reason":"AlreadyExists","message":"exists"})",
          ""});
  EXPECT_EQ(f.api->Create("/d", "{}").status().code(),
            absl::StatusCode::kAlreadyExists);

  // Validation errors: the specifics are in details.causes.
  f.fake->Add(
      "POST", "/v",
      HttpResponse{
          422,
          R"({"kind":"Status","reason":"Invalid","message":"Thing \"t\" is invalid",)"
          R"("details":{"causes":[{"field":"spec.size","message":"must be a number"}]}})",
          ""});
  EXPECT_THAT(
      f.api->Create("/v", "{}").status().message(),
      HasSubstr("HTTP 422: Thing \"t\" is invalid; spec.size: must be a "
                "number"));
}

TEST(ApiClientTest, ExplainsRefusedCredentialsAndForbiddenAccess) {
  Fixture f;
  f.fake->Add("GET", "/api/v1",
              HttpResponse{401,
                           R"({"kind":"Status","reason":"Unauthorized",)"
                           R"("message":"Unauthorized","code":401})",
                           ""});
  auto r = f.api->Get("/api/v1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ExplainFailure(r.status()),
            "the API server refused the credentials (check the kubeconfig's "
            "user: token, token file or client certificate): GET /api/v1: "
            "HTTP 401: Unauthorized");
  f.fake->Add("GET", "/api/v1/pods",
              HttpResponse{403,
                           R"({"kind":"Status","reason":"Forbidden","message":)"
                           R"("pods is forbidden: User u cannot list"})",
                           ""});
  auto p = f.api->Get("/api/v1/pods");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(ExplainFailure(p.status()),
            "access is forbidden (the user lacks the RBAC permission): GET "
            "/api/v1/pods: HTTP 403: pods is forbidden: User u cannot "
            "list");
  // Anything else: the message as it is.
  f.fake->Add("GET", "/missing", HttpResponse{404, "", ""});
  auto m = f.api->Get("/missing");
  EXPECT_EQ(ExplainFailure(m.status()), m.status().message());
  EXPECT_EQ(ExplainFailure(absl::UnavailableError("connecting: refused")),
            "connecting: refused");
}

TEST(ApiClientTest, RateLimitPacesRequests) {
  runtime::FakeClock clock;
  auto fake = std::make_unique<FakeHttpClient>();
  fake->Add("GET", "/x", HttpResponse{200, "ok", ""});
  ApiClient::Options o;
  o.clock = &clock;
  o.qps = 10;
  o.burst = 2;
  ApiClient api(std::move(fake), o);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(api.Get("/x").ok());
  // Two free from the burst, then one every 100 ms.
  EXPECT_EQ(clock.Slept(), absl::Milliseconds(200));
}

TEST(ApiClientTest, DefaultsDoNotThrottle) {
  // A burst of 1,000 requests waits for nothing on the client side: the API
  // server's flow control (429 with Retry-After) is the limit.
  runtime::FakeClock clock;
  auto fake = std::make_unique<FakeHttpClient>();
  fake->Add("GET", "/x", HttpResponse{200, "ok", ""});
  ApiClient::Options o;
  o.clock = &clock;
  ApiClient api(std::move(fake), o);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(api.Get("/x").ok());
  EXPECT_EQ(clock.Slept(), absl::ZeroDuration());
}

TEST(RetryDelayTest, Decisions) {
  runtime::Backoff b;
  EXPECT_FALSE(RetryDelay(HttpResponse{200, "", ""}, b));
  EXPECT_FALSE(RetryDelay(HttpResponse{404, "", ""}, b));
  EXPECT_FALSE(RetryDelay(HttpResponse{403, "", ""}, b));
  EXPECT_FALSE(RetryDelay(absl::InvalidArgumentError("x"), b));
  EXPECT_EQ(*RetryDelay(HttpResponse{502, "", ""}, b), absl::Seconds(1));
  EXPECT_EQ(*RetryDelay(absl::DeadlineExceededError("t"), b), absl::Seconds(1));
  EXPECT_EQ(*RetryDelay(HttpResponse{500, "", ""}, b), absl::Seconds(2));
  EXPECT_EQ(*RetryDelay(HttpResponse{429, "", "30"}, b), absl::Seconds(30));
}

TEST(ApiClientTest, AClosedWriteGateStopsWritesAndTheirRetriesNotReads) {
  runtime::FakeClock clock;
  auto fake = std::make_unique<FakeHttpClient>();
  FakeHttpClient* http = fake.get();
  WriteGate gate(&clock);
  ApiClient::Options o;
  o.clock = &clock;
  o.write_gate = &gate;
  ApiClient api(std::move(fake), o);
  http->Add("PATCH", "/x", HttpResponse{503, "busy", ""});
  http->Add("GET", "/x", HttpResponse{200, "ok", ""});

  // Closed from the start: nothing is sent, the error names the request.
  auto refused = api.Patch("/x", PatchType::kMerge, "{}");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("PATCH /x"));
  EXPECT_TRUE(http->requests().empty());
  EXPECT_TRUE(api.Get("/x").ok());  // Reads pass.

  // Open for 1.5 s: the first attempt and the retry after 1 s go out; the
  // retry after 2 s does not.
  gate.OpenUntil(clock.Now() + absl::Milliseconds(1500));
  auto late = api.Patch("/x", PatchType::kMerge, "{}");
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  int patches = 0;
  for (const auto& r : http->requests()) patches += r.method == "PATCH";
  EXPECT_EQ(patches, 2);
  EXPECT_EQ(gate.refused(), 2u);
  EXPECT_TRUE(gate.WaitIdle(absl::ZeroDuration()));
}

}  // namespace
}  // namespace herald::kube
