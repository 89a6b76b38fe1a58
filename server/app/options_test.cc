#include "server/app/options.h"

#include <grp.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <limits>
#include <string>

#include "absl/flags/marshalling.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::app {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Why(const AppOptions& o) {
  return std::string(ValidateAppOptions(o).message());
}

TEST(AppOptionsTest, TheDefaultsAreValid) {
  EXPECT_TRUE(ValidateAppOptions(AppOptions()).ok());
}

TEST(AppOptionsTest, EachBadValueIsNamedWithItsFlagAsTheFlagPrintsIt) {
  AppOptions o;
  o.qps = -1;
  EXPECT_EQ(Why(o), "--qps='-1': must be 0 (no client-side limit) or more");
  o.qps = std::numeric_limits<double>::infinity();
  EXPECT_EQ(Why(o), "--qps='inf': must be 0 (no client-side limit) or more");

  o = AppOptions();
  o.burst = 0;
  EXPECT_EQ(Why(o),
            "--burst='0': must be at least 1 (requests let through at once "
            "by the client-side limit)");

  o = AppOptions();
  o.max_message_bytes = 1023;
  EXPECT_EQ(Why(o),
            "--max_message_bytes='1023': must be between 1024 and 1073741824 "
            "(1 GiB)");
  o.max_message_bytes = kMaxMessageBytes;
  EXPECT_TRUE(ValidateAppOptions(o).ok());
  o.max_message_bytes = kMaxMessageBytes + 1;
  EXPECT_THAT(Why(o), StartsWith("--max_message_bytes='1073741825': "));

  o = AppOptions();
  o.watch_idle_timeout = absl::Milliseconds(999);
  EXPECT_EQ(Why(o),
            "--watch_idle_timeout='999ms': must be at least 1s (every list "
            "and watch read is abandoned after this long without data)");

  o = AppOptions();
  o.stop_wait = absl::Seconds(-5);
  EXPECT_EQ(Why(o), "--stop_wait='-5s': must not be negative");
  o.stop_wait = absl::ZeroDuration();
  EXPECT_TRUE(ValidateAppOptions(o).ok());

  o = AppOptions();
  o.resources.names = {"pods", " "};
  EXPECT_EQ(Why(o), "--resource='pods, ': entry 2 is empty");

  o = AppOptions();
  o.annotation_prefix = "not_a_domain";
  EXPECT_EQ(Why(o),
            "--annotation_prefix='not_a_domain': not usable as an annotation "
            "prefix: the prefix 'not_a_domain' is not a DNS subdomain "
            "(lowercase letters, digits, '-' and '.', each dot-separated part "
            "starting and ending with a letter or digit)");
  o.annotation_prefix = "";
  EXPECT_EQ(Why(o),
            "--annotation_prefix='': not usable as an annotation prefix: it "
            "is empty");
  o.annotation_prefix = "kopf.zalando.org";
  EXPECT_TRUE(ValidateAppOptions(o).ok());

  o = AppOptions();
  o.finalizer = "a/b/c";
  EXPECT_THAT(Why(o), StartsWith("--finalizer='a/b/c': not a valid finalizer "
                                 "name: more than one '/' (a key is"));

  o = AppOptions();
  o.socket = "/tmp/" + std::string(102, 's');
  EXPECT_TRUE(ValidateAppOptions(o).ok()) << "107 bytes fit";
  o.socket += "s";
  EXPECT_EQ(Why(o), "--socket='" + o.socket +
                        "': a Unix socket path has at most 107 bytes; this "
                        "one has 108");

  o = AppOptions();
  o.socket_mode.mode = 01777;
  EXPECT_EQ(Why(o),
            "--socket_mode='1777': not an octal mode between 0000 and 0777 "
            "(e.g. 0660)");

  o = AppOptions();
  o.socket_group.name = "built-in-code";
  EXPECT_EQ(Why(o), "--socket_group='built-in-code': no such group");

  for (const char* listen : {"localhost", "host:", "host:65536", "host:-1"}) {
    o = AppOptions();
    o.listen = listen;
    EXPECT_EQ(Why(o), absl::StrCat("--listen='", listen,
                                   "': not host:port (e.g. 127.0.0.1:50051, "
                                   "[::]:50051)"));
  }
  for (const char* listen : {"127.0.0.1:0", "[::]:50051", "unix:/x/y.sock"}) {
    o = AppOptions();
    o.listen = listen;
    EXPECT_TRUE(ValidateAppOptions(o).ok()) << listen;
  }
}

TEST(AppOptionsTest, LeaderElectionFlagsFollowClientGosConstraints) {
  AppOptions o;
  o.leader_elect_lease_duration = absl::Milliseconds(1500);
  EXPECT_EQ(Why(o),
            "--leader_elect_lease_duration='1.5s': must be a whole number of "
            "seconds, at least 1s (the Lease keeps seconds)");
  o = AppOptions();
  o.leader_elect_renew_deadline = absl::Seconds(15);
  EXPECT_EQ(Why(o),
            "--leader_elect_renew_deadline='15s': must be above 0 and shorter "
            "than --leader_elect_lease_duration (15s): the leader must stop "
            "before another replica may take the lease");
  o = AppOptions();
  o.leader_elect_retry_period = absl::Seconds(9);
  EXPECT_EQ(Why(o),
            "--leader_elect_retry_period='9s': must be above 0, and 1.2 times "
            "it shorter than --leader_elect_renew_deadline (10s), so that a "
            "renewal can be retried");
  o.leader_elect_retry_period = absl::ZeroDuration();
  EXPECT_THAT(Why(o), HasSubstr("--leader_elect_retry_period='0': must be"));
  o = AppOptions();
  o.leader_elect_lease_name = "Herald";
  EXPECT_EQ(Why(o),
            "--leader_elect_lease_name='Herald': not a Lease name (a DNS "
            "subdomain): may contain only lowercase letters, digits, '-' and "
            "'.'");
  o = AppOptions();
  o.leader_elect_namespace = "a.b";
  EXPECT_EQ(Why(o),
            "--leader_elect_namespace='a.b': not a namespace name: may contain "
            "only lowercase letters, digits, '-'");
  o = AppOptions();
  o.leader_elect_identity = "  ";
  EXPECT_THAT(Why(o), HasSubstr("--leader_elect_identity='  ': must be empty"));
  // Short durations for tests are fine.
  o = AppOptions();
  o.leader_elect_lease_duration = absl::Seconds(3);
  o.leader_elect_renew_deadline = absl::Seconds(2);
  o.leader_elect_retry_period = absl::Milliseconds(500);
  EXPECT_TRUE(ValidateAppOptions(o).ok());
}

TEST(AppOptionsTest, LeaderElectIdentityAndNamespaceDefaults) {
  AppOptions o;
  o.leader_elect_identity = "given";
  EXPECT_EQ(LeaderElectIdentity(o), "given");
  o.leader_elect_identity.clear();
  ::setenv("POD_NAME", "herald-7d9f-abcde", 1);
  EXPECT_EQ(LeaderElectIdentity(o), "herald-7d9f-abcde");
  ::unsetenv("POD_NAME");
  const std::string a = LeaderElectIdentity(o);
  EXPECT_THAT(a, ::testing::MatchesRegex(".+_[0-9a-f]{8}"));

  const std::string file = ::testing::TempDir() + "/namespace";
  EXPECT_EQ(LeaderElectNamespace(o, file + ".missing"), "default");
  {
    std::ofstream out(file);
    out << "operators\n";
  }
  EXPECT_EQ(LeaderElectNamespace(o, file), "operators");
  ::setenv("POD_NAMESPACE", "from-env", 1);
  EXPECT_EQ(LeaderElectNamespace(o, file), "from-env");
  ::unsetenv("POD_NAMESPACE");
  o.leader_elect_namespace = "given";
  EXPECT_EQ(LeaderElectNamespace(o, file), "given");
}

TEST(AppOptionsTest, SomewhereToListenIsNeeded) {
  AppOptions o;
  o.socket = "";
  EXPECT_EQ(Why(o), "--socket and --listen are both empty: nowhere to listen");
  o.listen = "127.0.0.1:0";
  EXPECT_TRUE(ValidateAppOptions(o).ok());
}

TEST(SocketModeFlagTest, ParsesOctalModesUpTo0777) {
  SocketMode mode;
  std::string error;
  EXPECT_EQ(absl::UnparseFlag(mode), "0660");
  ASSERT_TRUE(absl::ParseFlag("600", &mode, &error)) << error;
  EXPECT_EQ(mode.mode, 0600u);
  EXPECT_EQ(absl::UnparseFlag(mode), "0600");
  ASSERT_TRUE(absl::ParseFlag("0777", &mode, &error)) << error;
  EXPECT_EQ(mode.mode, 0777u);
  ASSERT_TRUE(absl::ParseFlag("0", &mode, &error)) << error;
  EXPECT_EQ(absl::UnparseFlag(mode), "0000");
}

TEST(SocketModeFlagTest, RefusesWhatIsNotAnOctalModeUpTo0777) {
  for (const char* text : {"", "0999", "1777", "00660", "rw", "-660", "66 "}) {
    SocketMode mode{0640};
    std::string error;
    EXPECT_FALSE(absl::ParseFlag(text, &mode, &error)) << text;
    EXPECT_EQ(error, "not an octal mode between 0000 and 0777 (e.g. 0660)")
        << text;
    EXPECT_EQ(mode.mode, 0640u) << "left unchanged: " << text;
  }
}

TEST(SocketGroupFlagTest, ByNameByNumberOrNone) {
  SocketGroup group;
  std::string error;
  ASSERT_TRUE(absl::ParseFlag("", &group, &error)) << error;
  EXPECT_FALSE(group.gid.has_value());
  EXPECT_EQ(absl::UnparseFlag(group), "");

  const struct group* own = ::getgrgid(::getgid());
  ASSERT_NE(own, nullptr);
  ASSERT_TRUE(absl::ParseFlag(own->gr_name, &group, &error)) << error;
  EXPECT_EQ(group.gid, ::getgid());
  EXPECT_EQ(absl::UnparseFlag(group), own->gr_name);

  ASSERT_TRUE(absl::ParseFlag("4242", &group, &error)) << error;
  EXPECT_EQ(group.gid, 4242u);
  EXPECT_EQ(absl::UnparseFlag(group), "4242");
}

TEST(SocketGroupFlagTest, AnUnknownNameIsAnError) {
  SocketGroup group;
  std::string error;
  ASSERT_TRUE(absl::ParseFlag("4242", &group, &error)) << error;
  EXPECT_FALSE(absl::ParseFlag("no-such-group", &group, &error));
  EXPECT_EQ(error, "no such group");
  EXPECT_EQ(group.gid, 4242u) << "left unchanged";
}

}  // namespace
}  // namespace herald::app
