// HttpClient over Boost.Beast: HTTP/1.1, TLS through Asio and OpenSSL,
// keep-alive connections pooled for requests, a fresh connection per stream.
#ifndef HERALD_SERVER_KUBE_BEAST_HTTP_CLIENT_H_
#define HERALD_SERVER_KUBE_BEAST_HTTP_CLIENT_H_

#include <memory>

#include "absl/status/statusor.h"
#include "server/kube/cluster_config.h"
#include "server/kube/http_client.h"

namespace herald::kube {

// Builds a client for `config`. Fails, naming the field, when a certificate
// or key cannot be loaded.
absl::StatusOr<std::unique_ptr<HttpClient>> NewBeastHttpClient(
    const ClusterConfig& config);

}  // namespace herald::kube

#endif  // HERALD_SERVER_KUBE_BEAST_HTTP_CLIENT_H_
