// Requests to the Kubernetes API with the policies every caller needs: a
// client-side rate limit, retries of network errors, 5xx and 429 (honouring
// Retry-After) with Kopf's backoff, and HTTP errors turned into absl::Status
// values that keep the server's message.
#ifndef HERALD_SERVER_KUBE_API_CLIENT_H_
#define HERALD_SERVER_KUBE_API_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/optional.h"
#include "server/kube/http_client.h"
#include "server/kube/write_gate.h"
#include "server/runtime/backoff.h"
#include "server/runtime/clock.h"
#include "server/runtime/rate_limiter.h"

namespace herald::kube {

// The HTTP status carried by a Status from ApiClient (0 when the error did not
// come from an HTTP answer).
int HttpStatusOf(const absl::Status& status);

// Why a request failed, in words for the log: a 401 is the API server
// refusing the credentials, a 403 a missing permission; the request and the
// server's message follow. Other failures: the status's message.
std::string ExplainFailure(const absl::Status& status);

// The Retry-After carried by a Status from StatusFromResponse, if any.
absl::optional<absl::Duration> RetryAfterOf(const absl::Status& status);

// Turns a non-2xx answer into a Status: the code follows the HTTP status
// (404 NotFound, 409 AlreadyExists or Aborted, 410 OutOfRange, 422
// InvalidArgument, 403 PermissionDenied, 429 ResourceExhausted, 5xx
// Unavailable), the message is "HTTP <code>: <the server's message>".
absl::Status StatusFromResponse(const HttpResponse& response,
                                absl::string_view what);

// Whether and when to retry after `result`. Returns the delay, or nullopt when
// the result is final (a success, a 4xx other than 429, or an error that a
// retry cannot fix). `backoff` advances when consulted.
absl::optional<absl::Duration> RetryDelay(
    const absl::StatusOr<HttpResponse>& result, runtime::Backoff& backoff);

enum class PatchType { kMerge, kJson, kStrategicMerge, kApply };

// Thread-safe.
class ApiClient {
 public:
  struct Options {
    // No client-side limit unless set: the API server's flow control (429
    // with Retry-After, honoured) is the limit.
    double qps = 0;
    int burst = 100;
    // Attempts per request before giving up on retryable errors.
    int max_attempts = 8;
    runtime::Clock* clock = runtime::Clock::Real();
    // When set, asked before every attempt of a request other than a GET: a
    // closed gate fails the request, unsent, with its FailedPrecondition
    // (leader election: only the lease's holder writes).
    WriteGate* write_gate = nullptr;
  };

  ApiClient(std::unique_ptr<HttpClient> http, Options options);
  explicit ApiClient(std::unique_ptr<HttpClient> http)
      : ApiClient(std::move(http), Options()) {}

  // The body of a 2xx answer; otherwise the error as above.
  // `max_attempts` (when > 0) overrides Options::max_attempts, for callers
  // that retry on their own terms.
  absl::StatusOr<std::string> Request(const HttpRequest& request,
                                      int max_attempts = 0);

  absl::StatusOr<std::string> Get(const std::string& target,
                                  int max_attempts = 0);
  absl::StatusOr<std::string> Create(const std::string& collection_path,
                                     const std::string& body);
  absl::StatusOr<std::string> Patch(const std::string& object_path,
                                    PatchType type, const std::string& patch);
  absl::StatusOr<std::string> Delete(const std::string& object_path);

  // For watches: the transport itself. Streams are not rate limited; the
  // watcher paces its reconnects.
  HttpClient& http() { return *http_; }
  runtime::Clock* clock() { return options_.clock; }

 private:
  std::unique_ptr<HttpClient> http_;
  Options options_;
  runtime::RateLimiter limiter_;
};

}  // namespace herald::kube

#endif  // HERALD_SERVER_KUBE_API_CLIENT_H_
