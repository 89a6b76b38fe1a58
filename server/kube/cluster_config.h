// Where the API server is and how to authenticate to it: from a kubeconfig
// file or from the pod's service account (in-cluster).
//
// Errors name the file and the field that is wrong, for example
//   kubeconfig /home/u/.kube/config: users[admin].user.client-key: cannot
//   read /home/u/admin.key: No such file or directory
#ifndef HERALD_SERVER_KUBE_CLUSTER_CONFIG_H_
#define HERALD_SERVER_KUBE_CLUSTER_CONFIG_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace herald::kube {

// A parsed server URL.
struct ServerUrl {
  bool tls = true;
  std::string host;  // Without brackets for IPv6.
  std::string port;
  std::string base_path;  // "" or "/prefix" without a trailing slash.

  static absl::StatusOr<ServerUrl> Parse(absl::string_view url);
  std::string ToString() const;
};

// Everything needed to reach and authenticate to one API server.
struct ClusterConfig {
  ServerUrl server;
  // PEM; empty means the system's trust store.
  std::string ca_pem;
  // PEM client certificate and key; both or neither.
  std::string client_cert_pem;
  std::string client_key_pem;
  // A bearer token, fixed.
  std::string token;
  // A file holding the bearer token, re-read when it changes (service-account
  // tokens rotate).
  std::string token_file;
  bool insecure_skip_tls_verify = false;
  // Overrides the name checked against the server's certificate.
  std::string tls_server_name;
  // Where this came from, for logs: "kubeconfig PATH, context NAME" or
  // "in-cluster service account".
  std::string source;
};

// Reads a kubeconfig file. `context` empty means its current-context.
absl::StatusOr<ClusterConfig> LoadKubeconfig(const std::string& path,
                                             const std::string& context = "");

// Reads the in-cluster configuration: KUBERNETES_SERVICE_HOST and _PORT from
// `getenv`, the token and CA from `sa_dir` (normally
// /var/run/secrets/kubernetes.io/serviceaccount).
absl::StatusOr<ClusterConfig> LoadInClusterConfig(
    const std::function<const char*(const char*)>& getenv = ::getenv,
    const std::string& sa_dir =
        "/var/run/secrets/kubernetes.io/serviceaccount");

// Chooses like kubectl: an explicit --kubeconfig path, else $KUBECONFIG (its
// first entry), else in-cluster when KUBERNETES_SERVICE_HOST is set, else
// ~/.kube/config.
absl::StatusOr<ClusterConfig> ResolveClusterConfig(
    const std::string& kubeconfig_flag, const std::string& context_flag);

}  // namespace herald::kube

#endif  // HERALD_SERVER_KUBE_CLUSTER_CONFIG_H_
