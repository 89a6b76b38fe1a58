#include "server/app/flags.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::app {
namespace {

using ::testing::ElementsAre;
using ::testing::StartsWith;

// Sets flags as the command line would; false (with the error) when a
// flag's own type refuses the text.
void SetFlags(const std::vector<std::pair<std::string, std::string>>& flags) {
  for (const auto& [name, value] : flags) {
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    ASSERT_NE(flag, nullptr) << name;
    std::string error;
    ASSERT_TRUE(flag->ParseFrom(value, &error)) << name << ": " << error;
  }
}

TEST(AppOptionsFromFlagsTest, TheFlagsDefaultsAreTheOptionsDefaults) {
  absl::FlagSaver saver;
  auto options = AppOptionsFromFlags();
  ASSERT_TRUE(options.ok()) << options.status();
  const AppOptions defaults;
  EXPECT_EQ(options->socket, "/tmp/herald.sock");
  EXPECT_EQ(options->socket_mode.mode, 0660u);
  EXPECT_FALSE(options->socket_group.gid.has_value());
  EXPECT_TRUE(options->resources.names.empty());
  EXPECT_EQ(options->annotation_prefix, "herald.dev");
  EXPECT_EQ(options->max_message_bytes, defaults.max_message_bytes);
  EXPECT_EQ(options->operator_memo.value, nlohmann::json::object());
  EXPECT_TRUE(options->namespaces.cluster_wide());
  EXPECT_EQ(options->qps, 0);
  EXPECT_EQ(options->burst, 100);
  EXPECT_EQ(options->watch_idle_timeout, absl::Seconds(70));
  EXPECT_EQ(options->log_level, runtime::Severity::kInfo);
  EXPECT_EQ(options->log_format, runtime::LogFormat::kText);
  EXPECT_TRUE(options->indices.specs.empty());
  EXPECT_EQ(options->stop_wait, absl::Seconds(10));
  EXPECT_EQ(absl::FindCommandLineFlag("socket_mode")->DefaultValue(), "0660");
  EXPECT_EQ(absl::FindCommandLineFlag("operator_memo")->DefaultValue(), "{}");
  EXPECT_EQ(absl::FindCommandLineFlag("log_level")->DefaultValue(), "info");
  EXPECT_EQ(absl::FindCommandLineFlag("log_format")->DefaultValue(), "text");
  EXPECT_EQ(absl::FindCommandLineFlag("qps")->DefaultValue(), "0");
}

TEST(AppOptionsFromFlagsTest, LeaderElectionFlagsHaveClientGosDefaults) {
  absl::FlagSaver saver;
  auto defaults = AppOptionsFromFlags();
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_FALSE(defaults->leader_elect);
  EXPECT_EQ(defaults->leader_elect_lease_duration, absl::Seconds(15));
  EXPECT_EQ(defaults->leader_elect_renew_deadline, absl::Seconds(10));
  EXPECT_EQ(defaults->leader_elect_retry_period, absl::Seconds(2));
  EXPECT_EQ(defaults->leader_elect_lease_name, "herald");
  EXPECT_EQ(defaults->leader_elect_namespace, "");
  EXPECT_EQ(defaults->leader_elect_identity, "");
  SetFlags({{"leader_elect", "true"},
            {"leader_elect_lease_duration", "6s"},
            {"leader_elect_renew_deadline", "4s"},
            {"leader_elect_retry_period", "1s"},
            {"leader_elect_identity", "herald-a"},
            {"leader_elect_lease_name", "ops-lease"},
            {"leader_elect_namespace", "ops"}});
  auto o = AppOptionsFromFlags();
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->leader_elect);
  EXPECT_EQ(o->leader_elect_lease_duration, absl::Seconds(6));
  EXPECT_EQ(o->leader_elect_renew_deadline, absl::Seconds(4));
  EXPECT_EQ(o->leader_elect_retry_period, absl::Seconds(1));
  EXPECT_EQ(o->leader_elect_identity, "herald-a");
  EXPECT_EQ(o->leader_elect_lease_name, "ops-lease");
  EXPECT_EQ(o->leader_elect_namespace, "ops");
  SetFlags({{"leader_elect_renew_deadline", "6s"}});
  EXPECT_THAT(std::string(AppOptionsFromFlags().status().message()),
              StartsWith("--leader_elect_renew_deadline='6s': "));
}

TEST(AppOptionsFromFlagsTest, StructuredFlagsAreParsedByTheirTypes) {
  absl::FlagSaver saver;
  SetFlags({{"index", "by_app=pods:label:app,by_node=pods:field:spec.nodeName"},
            {"resource", "kopfexamples,deployments.v1.apps"},
            {"namespaces", "team-*,!team-x"},
            {"operator_memo", R"({"region":"eu"})"},
            {"log_level", "warning"},
            {"log_format", "json"},
            {"socket_mode", "0600"},
            {"socket_group", "4242"},
            {"qps", "20"},
            {"stop_wait", "3s"}});
  auto options = AppOptionsFromFlags();
  ASSERT_TRUE(options.ok()) << options.status();
  ASSERT_EQ(options->indices.specs.size(), 2u);
  ASSERT_TRUE(options->indices.specs[0].index.has_value());
  EXPECT_EQ(options->indices.specs[0].index->label, "app");
  ASSERT_TRUE(options->indices.specs[1].index.has_value());
  EXPECT_EQ(options->indices.specs[1].index->field, "spec.nodeName");
  EXPECT_THAT(options->resources.names,
              ElementsAre("kopfexamples", "deployments.v1.apps"));
  EXPECT_TRUE(options->namespaces.Matches("team-a"));
  EXPECT_FALSE(options->namespaces.Matches("team-x"));
  EXPECT_EQ(options->operator_memo.value["region"], "eu");
  EXPECT_EQ(options->log_level, runtime::Severity::kWarning);
  EXPECT_EQ(options->log_format, runtime::LogFormat::kJson);
  EXPECT_EQ(options->socket_mode.mode, 0600u);
  EXPECT_EQ(options->socket_group.gid, 4242u);
  EXPECT_EQ(options->qps, 20);
  EXPECT_EQ(options->stop_wait, absl::Seconds(3));
}

// The lines tests/integration/test_flags.py expects (after "herald: ").
TEST(AppOptionsFromFlagsTest, ABadFlagIsOneLineNamingTheFlagTheValueAndWhy) {
  struct Case {
    const char* flag;
    const char* value;
    const char* line;
  };
  const Case cases[] = {
      {"namespaces", "Team-A",
       "--namespaces='Team-A': 'Team-A' is not a namespace name"},
      {"watch_idle_timeout", "0s",
       "--watch_idle_timeout='0': must be at least 1s"},
      {"stop_wait", "-5s", "--stop_wait='-5s': must not be negative"},
      {"max_message_bytes", "2147483648",
       "--max_message_bytes='2147483648': must be between 1024 and "
       "1073741824 (1 GiB)"},
      {"qps", "nan", "--qps='nan': must be 0 (no client-side limit) or more"},
      {"burst", "0", "--burst='0': must be at least 1"},
      {"resource", "pods,,configmaps",
       "--resource='pods,,configmaps': entry 2 is empty"},
      {"annotation_prefix", "not_a_domain",
       "--annotation_prefix='not_a_domain': not usable as an annotation "
       "prefix: the prefix 'not_a_domain' is not a DNS subdomain"},
      {"finalizer", "a/b/c",
       "--finalizer='a/b/c': not a valid finalizer name: more than one '/'"},
      {"listen", "localhost", "--listen='localhost': not host:port"},
      {"socket_mode", "0999",
       "--socket_mode='0999': not an octal mode between 0000 and 0777 (e.g. "
       "0660)"},
      {"socket_group", "no-such-group",
       "--socket_group='no-such-group': no such group"},
      {"log_level", "loud",
       "--log_level='loud': not debug, info, warning or error"},
      {"log_format", "plain", "--log_format='plain': not text or json"},
      {"operator_memo", "[1]", "--operator_memo='[1]': not a JSON object"},
      {"index", "by_node=pods:field:spec..nodeName",
       "--index='by_node=pods:field:spec..nodeName': "
       "'by_node=pods:field:spec..nodeName': index field 'spec..nodeName': "
       "segment 2 is empty"},
      {"index", "by_app",
       "--index='by_app': 'by_app' is not NAME=RESOURCE:label:KEY or "
       "NAME=RESOURCE:field:PATH"},
  };
  for (const Case& c : cases) {
    absl::FlagSaver saver;
    SetFlags({{c.flag, c.value}});
    auto options = AppOptionsFromFlags();
    ASSERT_FALSE(options.ok()) << c.flag << "=" << c.value;
    EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(options.status().message()), StartsWith(c.line));
    EXPECT_EQ(options.status().message().find('\n'), absl::string_view::npos);
  }
}

// The format of the line that refuses the flags: --log_format's, unless it
// is the bad one.
TEST(LogFormatFromFlagsTest, IsTheFlagsFormatOrTextWhenItDoesNotParse) {
  absl::FlagSaver saver;
  EXPECT_EQ(LogFormatFromFlags(), runtime::LogFormat::kText);
  SetFlags({{"log_format", "json"}, {"qps", "-1"}});
  EXPECT_FALSE(AppOptionsFromFlags().ok());
  EXPECT_EQ(LogFormatFromFlags(), runtime::LogFormat::kJson);
  SetFlags({{"log_format", "yaml"}});
  EXPECT_EQ(LogFormatFromFlags(), runtime::LogFormat::kText);
}

}  // namespace
}  // namespace herald::app
