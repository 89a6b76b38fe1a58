#include "server/kube/cluster_config.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::kube {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kPem[] =
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
constexpr char kKey[] =
    "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n";

class ClusterConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(
        ::getenv("TEST_TMPDIR") ? ::getenv("TEST_TMPDIR") : "/tmp", "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::string cmd = "mkdir -p " + dir_;
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  std::string Write(const std::string& name, const std::string& content) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    return path;
  }
  std::string dir_;
};

TEST_F(ClusterConfigTest, InlineDataAndToken) {
  std::string path = Write("config", absl::StrCat(R"(
apiVersion: v1
kind: Config
current-context: main
contexts:
- name: main
  context: {cluster: c1, user: u1}
clusters:
- name: c1
  cluster:
    server: https://10.1.2.3:6443/
    certificate-authority-data: )",
                                                  absl::Base64Escape(kPem), R"(
users:
- name: u1
  user:
    token: s3cret
)"));
  auto cfg = LoadKubeconfig(path);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->server.host, "10.1.2.3");
  EXPECT_EQ(cfg->server.port, "6443");
  EXPECT_TRUE(cfg->server.tls);
  EXPECT_EQ(cfg->ca_pem, kPem);
  EXPECT_EQ(cfg->token, "s3cret");
  EXPECT_THAT(cfg->source, AllOf(HasSubstr(path), HasSubstr("context main")));
}

TEST_F(ClusterConfigTest, FilesRelativeToTheConfigAndNamedContext) {
  Write("ca.crt", kPem);
  Write("admin.crt", kPem);
  Write("admin.key", kKey);
  Write("token", "from-file\n");
  std::string path = Write("config", R"(
current-context: other
contexts:
- name: other
  context: {cluster: nope, user: nope}
- name: local
  context: {cluster: c, user: certs}
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:1234
    certificate-authority: ca.crt
    tls-server-name: kubernetes
users:
- name: certs
  user:
    client-certificate: admin.crt
    client-key: admin.key
    tokenFile: token
)");
  auto cfg = LoadKubeconfig(path, "local");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->ca_pem, kPem);
  EXPECT_EQ(cfg->client_cert_pem, kPem);
  EXPECT_EQ(cfg->client_key_pem, kKey);
  EXPECT_EQ(cfg->token_file, dir_ + "/token");
  EXPECT_EQ(cfg->tls_server_name, "kubernetes");
}

TEST_F(ClusterConfigTest, MissingFileNamesIt) {
  auto cfg = LoadKubeconfig(dir_ + "/absent");
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(cfg.status().message(),
              AllOf(HasSubstr(dir_ + "/absent"), HasSubstr("No such file")));
}

TEST_F(ClusterConfigTest, BrokenYamlNamesLineAndColumn) {
  std::string path = Write("config", "clusters:\n  - name: [unclosed\n");
  auto cfg = LoadKubeconfig(path);
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(
      cfg.status().message(),
      AllOf(HasSubstr(path), HasSubstr("not valid YAML"), HasSubstr("line ")));
}

TEST_F(ClusterConfigTest, UnknownContext) {
  std::string path = Write("config", R"(
current-context: a
contexts: [{name: a, context: {cluster: c}}]
clusters: [{name: c, cluster: {server: "https://h"}}]
)");
  auto cfg = LoadKubeconfig(path, "zzz");
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(cfg.status().message(),
              AllOf(HasSubstr(path), HasSubstr("contexts"),
                    HasSubstr("no entry named 'zzz'")));
  auto ok = LoadKubeconfig(path);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->server.port, "443");
}

TEST_F(ClusterConfigTest, UnreadableCertificateNamesTheField) {
  std::string path = Write("config", R"(
current-context: a
contexts: [{name: a, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: "https://h:1"}}]
users: [{name: u, user: {client-certificate: /nonexistent/x.crt, client-key: /nonexistent/x.key}}]
)");
  auto cfg = LoadKubeconfig(path);
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(
      cfg.status().message(),
      AllOf(HasSubstr(path), HasSubstr("users[u].user.client-certificate"),
            HasSubstr("/nonexistent/x.crt")));
}

TEST_F(ClusterConfigTest, BadBase64AndNonPem) {
  std::string path = Write("config", R"(
current-context: a
contexts: [{name: a, context: {cluster: c}}]
clusters: [{name: c, cluster: {server: "https://h:1", certificate-authority-data: "!!!"}}]
)");
  auto cfg = LoadKubeconfig(path);
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(cfg.status().message(),
              HasSubstr("clusters[c].cluster.certificate-authority-data: is "
                        "not valid base64"));

  std::string path2 = Write("config2", absl::StrCat(R"(
current-context: a
contexts: [{name: a, context: {cluster: c}}]
clusters: [{name: c, cluster: {server: "https://h:1", certificate-authority-data: ")",
                                                    absl::Base64Escape("hello"),
                                                    R"("}}]
)"));
  cfg = LoadKubeconfig(path2);
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(cfg.status().message(), HasSubstr("is not PEM"));
}

TEST_F(ClusterConfigTest, CertificateWithoutKeyAndExecPlugins) {
  Write("a.crt", kPem);
  std::string path = Write("config", R"(
current-context: a
contexts: [{name: a, context: {cluster: c, user: u}}, {name: b, context: {cluster: c, user: e}}]
clusters: [{name: c, cluster: {server: "https://h:1"}}]
users:
- {name: u, user: {client-certificate: a.crt}}
- {name: e, user: {exec: {command: aws}}}
)");
  auto cfg = LoadKubeconfig(path);
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(cfg.status().message(), HasSubstr("users[u].user.client-key"));
  cfg = LoadKubeconfig(path, "b");
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(cfg.status().message(), AllOf(HasSubstr("users[e].user.exec"),
                                            HasSubstr("not supported")));
}

TEST_F(ClusterConfigTest, BadServerUrl) {
  std::string path = Write("config", R"(
current-context: a
contexts: [{name: a, context: {cluster: c}}]
clusters: [{name: c, cluster: {server: "ftp://h"}}]
)");
  auto cfg = LoadKubeconfig(path);
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(
      cfg.status().message(),
      AllOf(HasSubstr("clusters[c].cluster.server"), HasSubstr("https://")));
}

TEST(ServerUrlTest, Forms) {
  auto u = ServerUrl::Parse("https://[::1]:8443/base/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "8443");
  EXPECT_EQ(u->base_path, "/base");
  EXPECT_EQ(u->ToString(), "https://[::1]:8443/base");
  u = ServerUrl::Parse("http://example.com");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->port, "80");
  EXPECT_FALSE(ServerUrl::Parse("https://h:99999").ok());
  EXPECT_FALSE(ServerUrl::Parse("https://:80").ok());
}

TEST_F(ClusterConfigTest, InCluster) {
  Write("token", "sa-token");
  Write("ca.crt", kPem);
  std::map<std::string, std::string> env = {
      {"KUBERNETES_SERVICE_HOST", "10.0.0.1"},
      {"KUBERNETES_SERVICE_PORT", "443"}};
  auto getenv = [&](const char* k) -> const char* {
    auto it = env.find(k);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto cfg = LoadInClusterConfig(getenv, dir_);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->server.ToString(), "https://10.0.0.1:443");
  EXPECT_EQ(cfg->token_file, dir_ + "/token");
  EXPECT_EQ(cfg->ca_pem, kPem);

  env.erase("KUBERNETES_SERVICE_PORT");
  EXPECT_FALSE(LoadInClusterConfig(getenv, dir_).ok());
  env["KUBERNETES_SERVICE_PORT"] = "443";
  auto missing = LoadInClusterConfig(getenv, dir_ + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("token"));
}

}  // namespace
}  // namespace herald::kube
