// The sidecar assembled, against an API server that does not answer: what
// can be checked without a cluster (the gRPC services on the socket and on
// TCP, the HTTP endpoints, errors at start, the stop order's outcome).
#include "server/app/app.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/rpc/http_get_testing.h"

namespace herald::app {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::herald::rpc::testing::HttpGet;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A directory of its own under /tmp (socket paths have at most 107 bytes,
// which Bazel's test directories can exceed), removed afterwards.
class AppTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/herald-app-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  // Options for a sidecar whose API server refuses connections: it starts
  // and listens all the same (its watches retry).
  AppOptions Unreachable() {
    AppOptions o;
    o.kubeconfig = Write("kubeconfig", R"(
apiVersion: v1
kind: Config
current-context: c
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
)");
    o.socket = dir_ + "/herald.sock";
    o.resources.names = {"pods"};
    o.stop_wait = absl::ZeroDuration();
    return o;
  }

  bool Exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  std::string dir_;
};

// The health service's answer for `service` at `target`, or the RPC's
// error as "error <code>".
std::string Health(const std::string& target, const std::string& service) {
  auto stub = Health::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) return absl::StrCat("error ", status.error_code());
  return HealthCheckResponse::ServingStatus_Name(response.status());
}

TEST_F(AppTest, AMissingKubeconfigIsAnErrorNamingTheFile) {
  AppOptions o = Unreachable();
  o.kubeconfig = dir_ + "/no-such-kubeconfig";
  App app(o);
  absl::Status started = app.Start();
  EXPECT_FALSE(started.ok());
  EXPECT_THAT(std::string(started.message()),
              StartsWith("kubeconfig: cannot read " + o.kubeconfig));
  EXPECT_FALSE(Exists(o.socket)) << "nothing listens";
  EXPECT_EQ(app.Shutdown(), 0);
}

TEST_F(AppTest, ABadKubeconfigIsAnErrorNamingTheFileAndField) {
  AppOptions o = Unreachable();
  o.kubeconfig = Write("bad", "clusters: [\n");
  App app(o);
  absl::Status started = app.Start();
  EXPECT_THAT(std::string(started.message()),
              StartsWith("kubeconfig " + o.kubeconfig + ": not valid YAML"));
  o.kubeconfig = Write("bad2", "kind: Config\ncurrent-context: nowhere\n");
  App app2(o);
  EXPECT_THAT(std::string(app2.Start().message()),
              StartsWith("kubeconfig " + o.kubeconfig +
                         ": contexts: no entry named 'nowhere'"));
  EXPECT_FALSE(Exists(o.socket));
}

TEST_F(AppTest, OptionsAreCheckedBeforeTheKubeconfigIsRead) {
  AppOptions o = Unreachable();
  o.kubeconfig = dir_ + "/no-such-kubeconfig";
  o.qps = -1;
  App app(o);
  absl::Status started = app.Start();
  EXPECT_EQ(started.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(started.message(),
            "--qps='-1': must be 0 (no client-side limit) or more");
}

TEST_F(AppTest, ServesEveryServiceOnTheSocketAndOnTcpUntilShutDown) {
  AppOptions o = Unreachable();
  o.listen = "127.0.0.1:0";
  o.health_listen = "127.0.0.1:0";
  const mode_t umask_before = ::umask(0);
  App app(o);
  absl::Status started = app.Start();
  ::umask(umask_before);
  ASSERT_TRUE(started.ok()) << started;
  ASSERT_GT(app.listen_port(), 0);
  ASSERT_GT(app.health_port(), 0);

  struct stat st;
  ASSERT_EQ(::stat(o.socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u) << "whatever the umask";

  const std::string tcp = absl::StrCat("127.0.0.1:", app.listen_port());
  for (const std::string& target : {"unix:" + o.socket, tcp}) {
    for (const char* service :
         {"", "herald.v1.HandlerService", "herald.v1.InspectionService",
          "grpc.reflection.v1alpha.ServerReflection"}) {
      EXPECT_EQ(Health(target, service), "SERVING") << target << " " << service;
    }
    EXPECT_EQ(Health(target, "no.such.Service"), "error 5")  // NOT_FOUND
        << target;
  }
  // Nothing is listed while the API server does not answer.
  const std::string readyz = HttpGet(app.health_port(), "/readyz");
  EXPECT_THAT(readyz, StartsWith("HTTP/1.1 503"));
  EXPECT_THAT(readyz, HasSubstr(R"({"ready":false})"));

  app.Stop(StopReason::kRequested);
  EXPECT_EQ(app.Wait(), StopReason::kRequested);
  EXPECT_EQ(app.Shutdown(), 0);
  EXPECT_FALSE(Exists(o.socket)) << "the socket file is removed";
  EXPECT_EQ(Health(tcp, ""), "error 14");  // UNAVAILABLE: nobody listens.
  EXPECT_EQ(HttpGet(app.health_port(), "/readyz"), "");
  EXPECT_EQ(app.Shutdown(), 0) << "idempotent";
}

// /metrics on the health port: Prometheus's text format, with what the
// sidecar counted (here: discovery's requests to an API server that refuses
// connections) and, once leader election reports, its status.
TEST_F(AppTest, ServesMetricsOnTheHealthPort) {
  AppOptions o = Unreachable();
  o.health_listen = "127.0.0.1:0";
  App app(o);
  ASSERT_TRUE(app.Start().ok());
  const std::string refused =
      "rest_client_requests_total{code=\"<error>\",method=\"GET\","
      "host=\"127.0.0.1:1\"} ";
  std::string answer;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    answer = HttpGet(app.health_port(), "/metrics");
    if (answer.find(refused) != std::string::npos) break;
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < deadline);
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(answer, HasSubstr("Content-Type: text/plain; version=0.0.4; "
                                "charset=utf-8\r\n"));
  EXPECT_THAT(answer, HasSubstr("# TYPE rest_client_requests_total counter\n"));
  EXPECT_THAT(answer, HasSubstr(refused));
  EXPECT_THAT(answer, HasSubstr("\nherald_handler_streams 0\n"));
  EXPECT_THAT(answer, HasSubstr("\nherald_credits_available 0\n"));
  EXPECT_THAT(answer,
              ::testing::Not(HasSubstr("leader_election_master_status")));

  app.metrics().SetLeader("herald-pods", true);
  EXPECT_THAT(HttpGet(app.health_port(), "/metrics"),
              HasSubstr("\nleader_election_master_status{name=\"herald-pods\"} "
                        "1\n"));
  EXPECT_THAT(HttpGet(app.health_port(), "/nothing"),
              HasSubstr("unknown path; try /healthz, /readyz or /metrics"));
  app.Stop(StopReason::kRequested);
  EXPECT_EQ(app.Shutdown(), 0);
}

TEST_F(AppTest, AStaleSocketFileIsReplaced) {
  AppOptions o = Unreachable();
  Write("herald.sock", "left over");
  App app(o);
  ASSERT_TRUE(app.Start().ok());
  EXPECT_EQ(Health("unix:" + o.socket, ""), "SERVING");
}

TEST_F(AppTest, ASocketModeAndGroupAreApplied) {
  AppOptions o = Unreachable();
  o.socket_mode.mode = 0600;
  o.socket_group.name = std::to_string(::getgid());
  o.socket_group.gid = ::getgid();
  App app(o);
  ASSERT_TRUE(app.Start().ok());
  struct stat st;
  ASSERT_EQ(::stat(o.socket.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_gid, ::getgid());
}

TEST_F(AppTest, AHealthAddressInUseIsAnErrorNamingTheFlag) {
  // A port taken by a listening socket of the test's own.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);

  AppOptions o = Unreachable();
  o.health_listen = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  App app(o);
  absl::Status started = app.Start();
  ::close(fd);
  EXPECT_THAT(std::string(started.message()),
              StartsWith("--health_listen='" + o.health_listen + "': "));
  EXPECT_FALSE(Exists(o.socket)) << "the gRPC server never started";
}

TEST_F(AppTest, ASocketWhereNoneCanBeIsAnErrorNamingIt) {
  AppOptions o = Unreachable();
  o.socket = dir_ + "/no-such-dir/herald.sock";
  App app(o);
  absl::Status started = app.Start();
  EXPECT_EQ(started.message(), "cannot listen on unix:" + o.socket);
}

TEST_F(AppTest, AFatalErrorMakesTheExitCodeOneWhicheverStopCameFirst) {
  App app(Unreachable());
  ASSERT_TRUE(app.Start().ok());
  app.Stop(StopReason::kSigterm);
  app.Stop(StopReason::kFatal);
  EXPECT_EQ(app.Wait(), StopReason::kSigterm) << "the first reason is kept";
  EXPECT_EQ(app.Shutdown(), 1);
}

TEST_F(AppTest, RunReturnsTwoWhenStartFails) {
  AppOptions o = Unreachable();
  o.kubeconfig = dir_ + "/no-such-kubeconfig";
  App app(o);
  EXPECT_EQ(app.Run(), 2);
}

TEST_F(AppTest, RunEndsOnAFatalErrorWithExitCodeOne) {
  // Stopped before it starts: Run starts, sees the stop, shuts down, and
  // ends the thread that waits for signals, which no signal woke.
  App app(Unreachable());
  app.Stop(StopReason::kFatal);
  EXPECT_EQ(app.Run(), 1);
  EXPECT_FALSE(Exists(Unreachable().socket));
}

}  // namespace
}  // namespace herald::app
