#include "server/kube/counted_http_client.h"

#include "gtest/gtest.h"
#include "server/kube/fake_http_client.h"

namespace herald::kube {
namespace {

struct Fixture {
  Fixture() {
    auto f = std::make_unique<FakeHttpClient>();
    fake = f.get();
    requests = registry.AddCounter("rest_client_requests_total", "R.",
                                   {"code", "method", "host"});
    client = std::make_unique<CountedHttpClient>(std::move(f), requests,
                                                 "127.0.0.1:6443");
  }
  double Count(const std::string& code, const std::string& method) {
    const metrics::Counter* c =
        requests->Find({code, method, "127.0.0.1:6443"});
    return c == nullptr ? 0 : c->Value();
  }
  metrics::Registry registry;
  metrics::Family<metrics::Counter>* requests;
  FakeHttpClient* fake;
  std::unique_ptr<CountedHttpClient> client;
};

HttpRequest Request(const std::string& method, const std::string& target) {
  HttpRequest r;
  r.method = method;
  r.target = target;
  return r;
}

TEST(CountedHttpClientTest, CountsAnswersByCodeAndMethod) {
  Fixture f;
  f.fake->AddJson("/api/v1/a", "{}");
  f.fake->Add("PATCH", "/api/v1/b", HttpResponse{422, "{}", ""});
  f.fake->Add("GET", "/api/v1/c", absl::UnavailableError("reset"));
  ASSERT_TRUE(f.client->Send(Request("GET", "/api/v1/a")).ok());
  ASSERT_TRUE(f.client->Send(Request("GET", "/api/v1/a")).ok());
  auto patched = f.client->Send(Request("PATCH", "/api/v1/b"));
  ASSERT_TRUE(patched.ok());
  EXPECT_EQ(patched->status, 422);  // Passed through as it came.
  EXPECT_FALSE(f.client->Send(Request("GET", "/api/v1/c")).ok());
  EXPECT_EQ(f.Count("200", "GET"), 2);
  EXPECT_EQ(f.Count("422", "PATCH"), 1);
  EXPECT_EQ(f.Count("<error>", "GET"), 1);
}

TEST(CountedHttpClientTest, CountsStreamsWhenTheyEnd) {
  Fixture f;
  f.fake->AddStream("/watch/ok", {"a", "b"});
  f.fake->AddStream("/watch/cut", {"a"}, absl::UnavailableError("reset"));
  f.fake->AddStreamStatus("/watch/gone", 410, "gone");
  std::string seen;
  auto on_data = [&](absl::string_view chunk) {
    seen += std::string(chunk);
    return true;
  };
  EXPECT_TRUE(f.client
                  ->Stream(Request("GET", "/watch/ok"), absl::Seconds(1),
                           on_data, nullptr)
                  .ok());
  EXPECT_EQ(seen, "ab");  // The chunks reach the caller.
  EXPECT_FALSE(f.client
                   ->Stream(Request("GET", "/watch/cut"), absl::Seconds(1),
                            on_data, nullptr)
                   .ok());
  auto gone = f.client->Stream(Request("GET", "/watch/gone"), absl::Seconds(1),
                               on_data, nullptr);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->status, 410);
  // The cut stream had its 200 header: it counts as 200, not as <error>.
  EXPECT_EQ(f.Count("200", "GET"), 2);
  EXPECT_EQ(f.Count("410", "GET"), 1);
  EXPECT_EQ(f.Count("<error>", "GET"), 0);
}

}  // namespace
}  // namespace herald::kube
