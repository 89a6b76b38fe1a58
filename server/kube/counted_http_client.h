// An HttpClient that counts the requests of the one it wraps into
// rest_client_requests_total{code,method,host}, as client-go does: `code` is
// the HTTP status, or "<error>" when no answer came (network error,
// timeout, cancellation); `host` is the API server's "host:port".
// A stream (a watch) is counted when it ends; one whose 2xx header had
// arrived before an error cut it counts as "200", the status of every
// stream the sidecar opens.
#ifndef HERALD_SERVER_KUBE_COUNTED_HTTP_CLIENT_H_
#define HERALD_SERVER_KUBE_COUNTED_HTTP_CLIENT_H_

#include <memory>
#include <string>

#include "server/kube/http_client.h"
#include "server/metrics/metrics.h"

namespace herald::kube {

class CountedHttpClient : public HttpClient {
 public:
  CountedHttpClient(std::unique_ptr<HttpClient> inner,
                    metrics::Family<metrics::Counter>* requests,
                    std::string host)
      : inner_(std::move(inner)), requests_(requests), host_(std::move(host)) {}

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override;
  absl::StatusOr<HttpResponse> Stream(const HttpRequest& request,
                                      absl::Duration idle_timeout,
                                      const DataCallback& on_data,
                                      StreamCanceller* canceller) override;

 private:
  void Count(const std::string& method, const std::string& code);

  const std::unique_ptr<HttpClient> inner_;
  metrics::Family<metrics::Counter>* const requests_;
  const std::string host_;
};

}  // namespace herald::kube

#endif  // HERALD_SERVER_KUBE_COUNTED_HTTP_CLIENT_H_
