#include "server/rpc/http_endpoints.h"

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/runtime/logging.h"

namespace herald::rpc {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpEndpoints::Impl {
  // Open connections (declared first: connections still pending when `io`
  // goes are destroyed with it, and count down here).
  std::atomic<int> connections{0};
  asio::io_context io;
  tcp::acceptor acceptor{io};
  // Where answers are computed, off the I/O thread.
  asio::thread_pool answers{2};
};

// One accepted connection: read one request, answer it, close.
class HttpEndpoints::Connection
    : public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpEndpoints* owner, tcp::socket socket)
      : owner_(owner),
        open_(&owner->impl_->connections),
        stream_(std::move(socket)) {
    ++*open_;
  }
  ~Connection() { --*open_; }

  void Start() {
    stream_.expires_after(absl::ToChronoSeconds(kDeadline));
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (!ec) self->Answer();
                     });
  }

 private:
  void Answer() {
    stream_.expires_never();
    asio::post(owner_->impl_->answers, [self = shared_from_this()] {
      HttpEndpoints::Answer answer =
          self->owner_->Route(std::string(self->request_.target()));
      asio::post(self->stream_.get_executor(),
                 [self, answer = std::move(answer)]() mutable {
                   self->Write(std::move(answer));
                 });
    });
  }

  void Write(HttpEndpoints::Answer answer) {
    response_.result(static_cast<http::status>(answer.status));
    response_.version(request_.version());
    response_.set(http::field::content_type, answer.content_type);
    response_.keep_alive(false);
    response_.body() = std::move(answer.body);
    if (response_.body().empty() || response_.body().back() != '\n') {
      response_.body() += '\n';
    }
    response_.prepare_payload();
    stream_.expires_after(absl::ToChronoSeconds(kDeadline));
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code, size_t) {
                        beast::error_code ignored;
                        self->stream_.socket().shutdown(
                            tcp::socket::shutdown_both, ignored);
                      });
  }

  HttpEndpoints* owner_;
  std::atomic<int>* open_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

HttpEndpoints::HttpEndpoints(Handler healthz, Handler readyz, Handler metrics)
    : healthz_(std::move(healthz)),
      readyz_(std::move(readyz)),
      metrics_(std::move(metrics)),
      impl_(std::make_unique<Impl>()) {}

HttpEndpoints::~HttpEndpoints() { Stop(); }

HttpEndpoints::Answer HttpEndpoints::Route(const std::string& target) const {
  const std::string path = target.substr(0, target.find('?'));
  if (path == "/healthz") return healthz_();
  if (path == "/readyz") return readyz_();
  if (path == "/metrics") return metrics_();
  return {404,
          "{\"error\":\"unknown path; try /healthz, /readyz or /metrics\"}"};
}

void HttpEndpoints::Accept() {
  impl_->acceptor.async_accept(
      [this](beast::error_code ec, tcp::socket socket) {
        if (!impl_->acceptor.is_open()) return;
        if (!ec) {
          if (impl_->connections.load() >= kMaxConnections) {
            beast::error_code ignored;
            socket.close(ignored);
          } else {
            std::make_shared<Connection>(this, std::move(socket))->Start();
          }
        }
        Accept();
      });
}

absl::StatusOr<int> HttpEndpoints::Start(const std::string& address) {
  if (impl_ == nullptr || thread_.joinable()) {
    return absl::FailedPreconditionError("the endpoints start once");
  }
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", address, "' is not host:port"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 1 && host.front() == '[')
    host = host.substr(1, host.size() - 2);
  beast::error_code ec;
  const auto ip = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", host, "' is not an IP address"));
  }
  tcp::endpoint endpoint(ip, static_cast<uint16_t>(port));
  auto& a = impl_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, ": ", ec.message()));
  }
  const int bound = a.local_endpoint().port();
  Accept();
  thread_ = std::thread([this] { impl_->io.run(); });
  return bound;
}

void HttpEndpoints::Stop() {
  if (!thread_.joinable()) return;
  asio::post(impl_->io, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  });
  // Answers being computed finish (a probe has its own deadline); those
  // not started are dropped with their connections.
  impl_->answers.stop();
  impl_->answers.join();
  impl_->io.stop();
  thread_.join();
  // Connections still open go with the I/O context that holds them.
  impl_.reset();
}

}  // namespace herald::rpc
