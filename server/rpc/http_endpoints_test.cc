#include "server/rpc/http_endpoints.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::rpc {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A connected socket to the loopback port, or -1.
int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string Get(int port, const std::string& path) {
  const int fd = Connect(port);
  std::string answer;
  if (fd < 0) return answer;
  const std::string request = absl::StrCat(
      "GET ", path, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  if (::write(fd, request.data(), request.size()) ==
      static_cast<ssize_t>(request.size())) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0) answer.append(buf, n);
  }
  ::close(fd);
  return answer;
}

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
  EXPECT_THAT(Get(*port, "/healthz"), StartsWith("HTTP/1.1 200"));
  const std::string ready = Get(*port, "/readyz?verbose");
  EXPECT_THAT(ready, StartsWith("HTTP/1.1 503"));
  EXPECT_THAT(ready, HasSubstr("{\"ready\":false}\n"));
  const std::string metrics = Get(*port, "/metrics");
  EXPECT_THAT(metrics, HasSubstr("Content-Type: text/plain; version=0.0.4"));
  EXPECT_THAT(metrics, HasSubstr("up 1\n"));
  EXPECT_THAT(Get(*port, "/nope"), StartsWith("HTTP/1.1 404"));
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
  const int stalled = Connect(*port);
  ASSERT_GE(stalled, 0);
  // Half a request.
  const int partial = Connect(*port);
  ASSERT_GE(partial, 0);
  ASSERT_EQ(::write(partial, "GET /rea", 8), 8);
  std::string healthz;
  std::thread slow([&] { healthz = Get(*port, "/healthz"); });
  // Answered meanwhile.
  EXPECT_THAT(Get(*port, "/readyz"), StartsWith("HTTP/1.1 200"));
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
  const int stalled = Connect(*port);
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
  EXPECT_EQ(Connect(*port), -1);
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
