// HTTP to the API server as an interface, so that everything above it can be
// tested against a fake. BeastHttpClient (beast_http_client.h) is the real
// one.
#ifndef HERALD_SERVER_KUBE_HTTP_CLIENT_H_
#define HERALD_SERVER_KUBE_HTTP_CLIENT_H_

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace herald::kube {

struct HttpRequest {
  std::string method = "GET";
  // Path and query, for example "/api/v1/pods?limit=500". The server URL's
  // base path is prepended by the client.
  std::string target;
  std::string body;
  std::string content_type;
  // How long the whole request may take (unary requests).
  absl::Duration timeout = absl::Seconds(30);
};

struct HttpResponse {
  int status = 0;
  std::string body;
  // The Retry-After header, if any, as sent.
  std::string retry_after;
};

// Lets another thread stop a stream. Thread-safe.
class StreamCanceller {
 public:
  void Cancel() {
    std::function<void()> fn;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
      fn = on_cancel_;
    }
    if (fn) fn();
  }
  bool cancelled() const {
    std::lock_guard<std::mutex> lock(mu_);
    return cancelled_;
  }
  // Used by clients: what to do on Cancel while a stream is open.
  void SetOnCancel(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    on_cancel_ = std::move(fn);
  }

 private:
  mutable std::mutex mu_;
  bool cancelled_ = false;
  std::function<void()> on_cancel_;
};

// Receives a streamed body. Return false from OnData to stop reading.
using DataCallback = std::function<bool(absl::string_view chunk)>;

// Thread-safe: any thread may send requests; each stream occupies its caller.
class HttpClient {
 public:
  virtual ~HttpClient() = default;

  // One request and its whole response. Network errors are Unavailable;
  // a timeout is DeadlineExceeded. HTTP errors are responses, not errors.
  virtual absl::StatusOr<HttpResponse> Send(const HttpRequest& request) = 0;

  // A request whose body arrives over time (a watch). For a 2xx answer,
  // `on_data` is called with an empty chunk as soon as the header has
  // arrived, then with the body chunk by chunk as it arrives, and the result
  // has an empty body; otherwise the (small) body is collected into the
  // result.
  // Returns when the body ends, when `on_data` returns false, when nothing
  // arrived for `idle_timeout` (DeadlineExceeded), or when `canceller` is
  // cancelled (Cancelled).
  virtual absl::StatusOr<HttpResponse> Stream(const HttpRequest& request,
                                              absl::Duration idle_timeout,
                                              const DataCallback& on_data,
                                              StreamCanceller* canceller) = 0;
};

}  // namespace herald::kube

#endif  // HERALD_SERVER_KUBE_HTTP_CLIENT_H_
