#include "server/rpc/http_endpoints.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/rpc/http_get_testing.h"

namespace herald::rpc {
namespace {

using ::herald::rpc::testing::ConnectLoopback;
using ::herald::rpc::testing::HttpGet;
using ::testing::HasSubstr;
using ::testing::StartsWith;

HttpEndpoints::Answer Json(int status, const std::string& body) {
  return {status, body, "application/json"};
}

TEST(HttpEndpointsTest, AnswersEachPathWithItsHandler) {
  HttpEndpoints endpoints(
      [] { return Json(200, R"({"healthy":true})"); },
      [] { return Json(503, R"({"ready":false})"); },
      [] {
        return HttpEndpoints::Answer{200, "up 1", "text/plain; version=0.0.4"};
      });
  auto port = endpoints.Start("127.0.0.1:0");
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_THAT(HttpGet(*port, "/healthz"), StartsWith("HTTP/1.1 200"));
  const std::string ready = HttpGet(*port, "/readyz?verbose");
  EXPECT_THAT(ready, StartsWith("HTTP/1.1 503"));
  EXPECT_THAT(ready, HasSubstr("{\"ready\":false}\n"));
  const std::string metrics = HttpGet(*port, "/metrics");
  EXPECT_THAT(metrics, HasSubstr("Content-Type: text/plain; version=0.0.4"));
  EXPECT_THAT(metrics, HasSubstr("up 1\n"));
  EXPECT_THAT(HttpGet(*port, "/nope"), StartsWith("HTTP/1.1 404"));
}

TEST(HttpEndpointsTest, AStalledClientOrASlowProbeHoldsNothingUp) {
  absl::Notification release;
  HttpEndpoints endpoints(
      [&] {
        release.WaitForNotification();  // A probe handler taking its time.
        return Json(200, "{}");
      },
      [] { return Json(200, R"({"ready":true})"); },
      [] { return Json(200, ""); });
  auto port = endpoints.Start("127.0.0.1:0");
  ASSERT_TRUE(port.ok()) << port.status();
  // Connected, sending nothing.
  const int stalled = ConnectLoopback(*port);
  ASSERT_GE(stalled, 0);
  // Half a request.
  const int partial = ConnectLoopback(*port);
  ASSERT_GE(partial, 0);
  ASSERT_EQ(::write(partial, "GET /rea", 8), 8);
  std::string healthz;
  std::thread slow([&] { healthz = HttpGet(*port, "/healthz"); });
  // Answered meanwhile.
  EXPECT_THAT(HttpGet(*port, "/readyz"), StartsWith("HTTP/1.1 200"));
  release.Notify();
  slow.join();
  EXPECT_THAT(healthz, StartsWith("HTTP/1.1 200"));
  ::close(stalled);
  ::close(partial);
}

TEST(HttpEndpointsTest, StopsWithConnectionsOpen) {
  HttpEndpoints endpoints([] { return Json(200, "{}"); },
                          [] { return Json(200, "{}"); },
                          [] { return Json(200, ""); });
  auto port = endpoints.Start("127.0.0.1:0");
  ASSERT_TRUE(port.ok()) << port.status();
  const int stalled = ConnectLoopback(*port);
  ASSERT_GE(stalled, 0);
  timeval limit{5, 0};  // A failure here is an error, not a hang.
  ASSERT_EQ(
      ::setsockopt(stalled, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit)), 0);
  endpoints.Stop();
  // Closed by the sidecar: end of stream once accepted, a reset when it was
  // still waiting to be.
  char c;
  const ssize_t n = ::read(stalled, &c, 1);
  EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET)) << strerror(errno);
  ::close(stalled);
  EXPECT_EQ(ConnectLoopback(*port), -1);
}

TEST(HttpEndpointsTest, ABadAddressIsAnErrorNamingIt) {
  HttpEndpoints endpoints(nullptr, nullptr, nullptr);
  EXPECT_THAT(std::string(endpoints.Start("nonsense").status().message()),
              HasSubstr("'nonsense' is not host:port"));
  EXPECT_THAT(std::string(endpoints.Start("host:80").status().message()),
              HasSubstr("'host' is not an IP address"));
}

}  // namespace
}  // namespace herald::rpc
