#include "server/kube/counted_http_client.h"

#include "absl/strings/str_cat.h"

namespace herald::kube {
namespace {
constexpr char kNoAnswer[] = "<error>";
}  // namespace

void CountedHttpClient::Count(const std::string& method,
                              const std::string& code) {
  requests_->With({code, method, host_})->Inc();
}

absl::StatusOr<HttpResponse> CountedHttpClient::Send(
    const HttpRequest& request) {
  absl::StatusOr<HttpResponse> r = inner_->Send(request);
  Count(request.method, r.ok() ? absl::StrCat(r->status) : kNoAnswer);
  return r;
}

absl::StatusOr<HttpResponse> CountedHttpClient::Stream(
    const HttpRequest& request, absl::Duration idle_timeout,
    const DataCallback& on_data, StreamCanceller* canceller) {
  bool answered = false;
  absl::StatusOr<HttpResponse> r = inner_->Stream(
      request, idle_timeout,
      [&](absl::string_view chunk) {
        answered = true;
        return on_data(chunk);
      },
      canceller);
  std::string code = kNoAnswer;
  if (r.ok()) {
    code = absl::StrCat(r->status);
  } else if (answered) {
    code = "200";
  }
  Count(request.method, code);
  return r;
}

}  // namespace herald::kube
