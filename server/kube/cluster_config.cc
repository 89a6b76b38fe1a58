#include "server/kube/cluster_config.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "yaml-cpp/yaml.h"

namespace herald::kube {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Reads kubeconfig fields with errors that name the file and the field.
class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  absl::Status Error(absl::string_view field, absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("kubeconfig ", path_, ": ", field, ": ", what));
  }

  // Finds the entry named `name` in the list `list` ("clusters", "users",
  // "contexts") and returns its body (`cluster`, `user` or `context`).
  absl::StatusOr<YAML::Node> Named(const YAML::Node& root,
                                   const std::string& list,
                                   const std::string& body,
                                   const std::string& name) const {
    const YAML::Node items = root[list];
    if (items && !items.IsSequence()) return Error(list, "is not a list");
    if (items) {
      for (const auto& item : items) {
        if (item["name"] && item["name"].as<std::string>("") == name) {
          const YAML::Node b = item[body];
          if (!b || !b.IsMap()) {
            return Error(absl::StrCat(list, "[", name, "].", body),
                         "is missing or not a map");
          }
          return b;
        }
      }
    }
    return Error(list, absl::StrCat("no entry named '", name, "'"));
  }

  std::string Str(const YAML::Node& node, const char* key) const {
    const YAML::Node v = node[key];
    if (!v || !v.IsScalar()) return "";
    return v.as<std::string>("");
  }

  // A PEM value given either inline (`<key>-data`, base64) or as a file path
  // (`<key>`, relative to the kubeconfig's folder).
  absl::StatusOr<std::string> DataOrFile(const YAML::Node& node,
                                         const std::string& field_prefix,
                                         const std::string& key) const {
    std::string data = Str(node, (key + "-data").c_str());
    if (!data.empty()) {
      std::string out;
      if (!absl::Base64Unescape(data, &out)) {
        return Error(field_prefix + key + "-data", "is not valid base64");
      }
      return out;
    }
    std::string file = Str(node, key.c_str());
    if (file.empty()) return std::string();
    if (file[0] != '/') file = DirName(path_) + "/" + file;
    auto content = ReadFile(file);
    if (!content.ok()) {
      return Error(field_prefix + key, content.status().message());
    }
    return *content;
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool LooksLikePem(absl::string_view s) {
  return absl::StrContains(s, "-----BEGIN ");
}

}  // namespace

absl::StatusOr<ServerUrl> ServerUrl::Parse(absl::string_view url) {
  ServerUrl out;
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "https://")) {
    out.tls = true;
  } else if (absl::ConsumePrefix(&rest, "http://")) {
    out.tls = false;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "server URL '", url, "' must start with https:// or http://"));
  }
  size_t slash = rest.find('/');
  absl::string_view hostport = rest.substr(0, slash);
  if (slash != absl::string_view::npos) {
    out.base_path = std::string(absl::StripSuffix(rest.substr(slash), "/"));
  }
  if (absl::ConsumePrefix(&hostport, "[")) {
    size_t close = hostport.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("server URL '", url, "' has an unclosed '['"));
    }
    out.host = std::string(hostport.substr(0, close));
    hostport.remove_prefix(close + 1);
    if (absl::ConsumePrefix(&hostport, ":")) out.port = std::string(hostport);
  } else {
    size_t colon = hostport.rfind(':');
    out.host = std::string(hostport.substr(0, colon));
    if (colon != absl::string_view::npos) {
      out.port = std::string(hostport.substr(colon + 1));
    }
  }
  if (out.host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("server URL '", url, "' has no host"));
  }
  if (out.port.empty()) out.port = out.tls ? "443" : "80";
  int port = 0;
  if (!absl::SimpleAtoi(out.port, &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("server URL '", url, "' has a bad port '", out.port, "'"));
  }
  return out;
}

std::string ServerUrl::ToString() const {
  bool v6 = absl::StrContains(host, ':');
  return absl::StrCat(tls ? "https://" : "http://", v6 ? "[" : "", host,
                      v6 ? "]" : "", ":", port, base_path);
}

absl::StatusOr<ClusterConfig> LoadKubeconfig(const std::string& path,
                                             const std::string& context) {
  Reader r(path);
  auto text = ReadFile(path);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kubeconfig: ", text.status().message()));
  }
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kubeconfig ", path, ": not valid YAML: line ", e.mark.line + 1,
        ", column ", e.mark.column + 1, ": ", e.msg));
  }
  if (!root.IsMap()) return r.Error("(top level)", "is not a map");

  try {
    std::string ctx_name = context;
    if (ctx_name.empty()) {
      ctx_name = r.Str(root, "current-context");
      if (ctx_name.empty()) {
        return r.Error("current-context",
                       "is empty and no context was given (--context)");
      }
    }
    auto ctx = r.Named(root, "contexts", "context", ctx_name);
    if (!ctx.ok()) return ctx.status();
    std::string cluster_name = r.Str(*ctx, "cluster");
    std::string user_name = r.Str(*ctx, "user");
    if (cluster_name.empty()) {
      return r.Error(absl::StrCat("contexts[", ctx_name, "].context.cluster"),
                     "is empty");
    }
    auto cluster = r.Named(root, "clusters", "cluster", cluster_name);
    if (!cluster.ok()) return cluster.status();

    ClusterConfig cfg;
    cfg.source = absl::StrCat("kubeconfig ", path, ", context ", ctx_name);
    const std::string cprefix =
        absl::StrCat("clusters[", cluster_name, "].cluster.");
    std::string server = r.Str(*cluster, "server");
    if (server.empty()) return r.Error(cprefix + "server", "is empty");
    auto url = ServerUrl::Parse(server);
    if (!url.ok()) return r.Error(cprefix + "server", url.status().message());
    cfg.server = *url;
    auto ca = r.DataOrFile(*cluster, cprefix, "certificate-authority");
    if (!ca.ok()) return ca.status();
    if (!ca->empty() && !LooksLikePem(*ca)) {
      return r.Error(cprefix + "certificate-authority", "is not PEM");
    }
    cfg.ca_pem = *ca;
    cfg.insecure_skip_tls_verify =
        r.Str(*cluster, "insecure-skip-tls-verify") == "true";
    cfg.tls_server_name = r.Str(*cluster, "tls-server-name");

    if (!user_name.empty()) {
      auto user = r.Named(root, "users", "user", user_name);
      if (!user.ok()) return user.status();
      const std::string uprefix = absl::StrCat("users[", user_name, "].user.");
      if ((*user)["exec"]) {
        return r.Error(uprefix + "exec",
                       "exec credential plugins are not supported; use a "
                       "token, a token file or a client certificate");
      }
      if ((*user)["auth-provider"]) {
        return r.Error(uprefix + "auth-provider",
                       "auth providers are not supported; use a token, a "
                       "token file or a client certificate");
      }
      auto cert = r.DataOrFile(*user, uprefix, "client-certificate");
      if (!cert.ok()) return cert.status();
      auto key = r.DataOrFile(*user, uprefix, "client-key");
      if (!key.ok()) return key.status();
      if (cert->empty() != key->empty()) {
        return r.Error(
            uprefix + (cert->empty() ? "client-certificate" : "client-key"),
            "is missing; a client certificate needs both "
            "certificate and key");
      }
      if (!cert->empty() && !LooksLikePem(*cert)) {
        return r.Error(uprefix + "client-certificate", "is not PEM");
      }
      if (!key->empty() && !LooksLikePem(*key)) {
        return r.Error(uprefix + "client-key", "is not PEM");
      }
      cfg.client_cert_pem = *cert;
      cfg.client_key_pem = *key;
      cfg.token = r.Str(*user, "token");
      std::string token_file = r.Str(*user, "tokenFile");
      if (!token_file.empty()) {
        if (token_file[0] != '/') token_file = DirName(path) + "/" + token_file;
        auto t = ReadFile(token_file);
        if (!t.ok())
          return r.Error(uprefix + "tokenFile", t.status().message());
        cfg.token_file = token_file;
      }
    }
    return cfg;
  } catch (const YAML::Exception& e) {
    return r.Error("(structure)", e.what());
  }
}

absl::StatusOr<ClusterConfig> LoadInClusterConfig(
    const std::function<const char*(const char*)>& getenv,
    const std::string& sa_dir) {
  const char* host = getenv("KUBERNETES_SERVICE_HOST");
  const char* port = getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    return absl::FailedPreconditionError(
        "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must "
        "be set");
  }
  std::string h = host;
  if (absl::StrContains(h, ':')) h = absl::StrCat("[", h, "]");
  auto url = ServerUrl::Parse(absl::StrCat("https://", h, ":", port));
  if (!url.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("in-cluster: ", url.status().message()));
  }
  ClusterConfig cfg;
  cfg.server = *url;
  cfg.source = "in-cluster service account";
  cfg.token_file = sa_dir + "/token";
  auto token = ReadFile(cfg.token_file);
  if (!token.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("in-cluster: token: ", token.status().message()));
  }
  auto ca = ReadFile(sa_dir + "/ca.crt");
  if (!ca.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("in-cluster: ca.crt: ", ca.status().message()));
  }
  cfg.ca_pem = *ca;
  return cfg;
}

absl::StatusOr<ClusterConfig> ResolveClusterConfig(
    const std::string& kubeconfig_flag, const std::string& context_flag) {
  if (!kubeconfig_flag.empty()) {
    return LoadKubeconfig(kubeconfig_flag, context_flag);
  }
  const char* env = ::getenv("KUBECONFIG");
  if (env != nullptr && *env != '\0') {
    std::vector<std::string> paths =
        absl::StrSplit(env, ':', absl::SkipEmpty());
    if (!paths.empty()) return LoadKubeconfig(paths.front(), context_flag);
  }
  const char* svc = ::getenv("KUBERNETES_SERVICE_HOST");
  if (svc != nullptr && *svc != '\0' && context_flag.empty()) {
    return LoadInClusterConfig();
  }
  const char* home = ::getenv("HOME");
  return LoadKubeconfig(absl::StrCat(home ? home : "", "/.kube/config"),
                        context_flag);
}

}  // namespace herald::kube
