// An in-memory HttpClient for unit tests: answers from a script of
// responses per "METHOD target" and records the requests it saw; and the
// ApiClient the tests put over it.
#ifndef HERALD_SERVER_KUBE_FAKE_HTTP_CLIENT_H_
#define HERALD_SERVER_KUBE_FAKE_HTTP_CLIENT_H_

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/kube/api_client.h"
#include "server/kube/http_client.h"
#include "server/runtime/clock.h"

namespace herald::kube {

class FakeHttpClient : public HttpClient {
 public:
  // Queues an answer for `method target`. The last answer queued for a key is
  // repeated once the queue is down to it.
  void Add(const std::string& method, const std::string& target,
           absl::StatusOr<HttpResponse> response) {
    absl::MutexLock lock(&mu_);
    script_[absl::StrCat(method, " ", target)].push_back(std::move(response));
  }
  void AddJson(const std::string& target, const std::string& json,
               int status = 200) {
    Add("GET", target, HttpResponse{status, json, ""});
  }
  // Streams: each Stream call whose target starts with `target_prefix` gets
  // the next scripted answer for that prefix (the longest matching prefix
  // wins): chunks for a 200, then `end` as the call's result.
  void AddStream(const std::string& target_prefix,
                 std::vector<std::string> chunks,
                 absl::Status end = absl::OkStatus()) {
    absl::MutexLock lock(&mu_);
    streams_[target_prefix].push_back(
        {200, "", "", std::move(chunks), std::move(end)});
  }
  // A stream answered with a non-2xx status, a body and a Retry-After.
  void AddStreamStatus(const std::string& target_prefix, int status,
                       std::string body, std::string retry_after = "") {
    absl::MutexLock lock(&mu_);
    streams_[target_prefix].push_back({status,
                                       std::move(body),
                                       std::move(retry_after),
                                       {},
                                       absl::OkStatus()});
  }

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    absl::MutexLock lock(&mu_);
    requests_.push_back(request);
    auto it = script_.find(absl::StrCat(request.method, " ", request.target));
    if (it == script_.end() || it->second.empty()) {
      return HttpResponse{404,
                          R"({"kind":"Status","message":"not scripted: )" +
                              request.target + R"("})",
                          ""};
    }
    auto r = it->second.front();
    if (it->second.size() > 1) it->second.pop_front();
    return r;
  }

  absl::StatusOr<HttpResponse> Stream(const HttpRequest& request,
                                      absl::Duration idle_timeout,
                                      const DataCallback& on_data,
                                      StreamCanceller* canceller) override {
    StreamScript s;
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(request);
      auto best = streams_.end();
      for (auto it = streams_.begin(); it != streams_.end(); ++it) {
        if (!it->second.empty() &&
            request.target.compare(0, it->first.size(), it->first) == 0 &&
            (best == streams_.end() || it->first.size() > best->first.size())) {
          best = it;
        }
      }
      if (best == streams_.end()) {
        return absl::UnavailableError("no stream scripted: " + request.target);
      }
      s = best->second.front();
      best->second.pop_front();
    }
    if (s.status != 200) return HttpResponse{s.status, s.body, s.retry_after};
    if (!on_data(absl::string_view())) return HttpResponse{200, "", ""};
    for (const auto& c : s.chunks) {
      if (canceller != nullptr && canceller->cancelled()) {
        return absl::CancelledError("cancelled");
      }
      if (!on_data(c)) return HttpResponse{200, "", ""};
    }
    if (!s.end.ok()) return s.end;
    return HttpResponse{200, "", ""};
  }

  std::vector<HttpRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  struct StreamScript {
    int status = 200;
    std::string body;
    std::string retry_after;
    std::vector<std::string> chunks;
    absl::Status end;
  };
  absl::Mutex mu_;
  std::map<std::string, std::deque<absl::StatusOr<HttpResponse>>> script_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::deque<StreamScript>> streams_ ABSL_GUARDED_BY(mu_);
  std::vector<HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
};

// An ApiClient over `http` that sleeps on `clock` (a fake one in tests),
// with no client-side rate limit.
inline std::unique_ptr<ApiClient> TestApiClient(
    std::unique_ptr<HttpClient> http, runtime::Clock* clock) {
  ApiClient::Options o;
  o.clock = clock;
  o.qps = 0;
  return std::make_unique<ApiClient>(std::move(http), o);
}

}  // namespace herald::kube

#endif  // HERALD_SERVER_KUBE_FAKE_HTTP_CLIENT_H_
