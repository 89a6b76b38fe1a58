// App::Run stops on SIGTERM and SIGINT. The signals are blocked before any
// thread exists (at static initialisation), so that sending one to the
// process reaches the thread Run waits for them on, and nothing else.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "server/app/app.h"

namespace herald::app {
namespace {

const bool kSignalsBlocked = [] {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return pthread_sigmask(SIG_BLOCK, &signals, nullptr) == 0;
}();

class AppRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(kSignalsBlocked);
    char dir[] = "/tmp/herald-app-run-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    options_.kubeconfig = dir_ + "/kubeconfig";
    std::ofstream(options_.kubeconfig) << R"(
apiVersion: v1
kind: Config
current-context: c
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
)";
    options_.socket = dir_ + "/herald.sock";
    options_.stop_wait = absl::ZeroDuration();
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }

  std::string dir_;
  AppOptions options_;
};

// The signal is pending before Run starts: Run starts the sidecar, takes
// the signal, stops, and exits 0 with the socket file removed.
TEST_F(AppRunTest, SigtermStopsWithExitCodeZero) {
  ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);
  App app(options_);
  EXPECT_EQ(app.Run(), 0);
  struct stat st;
  EXPECT_NE(::stat(options_.socket.c_str(), &st), 0);
  sigset_t pending;
  sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGTERM)) << "Run took it";
}

TEST_F(AppRunTest, SigintStopsWithExitCodeZero) {
  ASSERT_EQ(::kill(::getpid(), SIGINT), 0);
  App app(options_);
  EXPECT_EQ(app.Run(), 0);
  sigset_t pending;
  sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGINT)) << "Run took it";
}

}  // namespace
}  // namespace herald::app
