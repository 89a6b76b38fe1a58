#include "server/rpc/http_endpoints.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/runtime/logging.h"

namespace herald::rpc {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpEndpoints::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
};

HttpEndpoints::HttpEndpoints(Handler healthz, Handler readyz, Handler metrics)
    : impl_(std::make_unique<Impl>()),
      healthz_(std::move(healthz)),
      readyz_(std::move(readyz)),
      metrics_(std::move(metrics)) {}

HttpEndpoints::~HttpEndpoints() { Stop(); }

absl::StatusOr<int> HttpEndpoints::Start(const std::string& address) {
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
  thread_ = std::thread([this] {
    for (;;) {
      beast::error_code aec;
      tcp::socket socket(impl_->io);
      impl_->acceptor.accept(socket, aec);
      if (aec) {
        if (!impl_->acceptor.is_open()) return;
        continue;
      }
      beast::flat_buffer buffer;
      http::request<http::string_body> req;
      beast::error_code rec;
      http::read(socket, buffer, req, rec);
      if (rec) continue;
      Answer answer;
      const std::string target(req.target());
      const std::string path = target.substr(0, target.find('?'));
      if (path == "/healthz") {
        answer = healthz_();
      } else if (path == "/readyz") {
        answer = readyz_();
      } else if (path == "/metrics") {
        answer = metrics_();
      } else {
        answer = {404,
                  "{\"error\":\"unknown path; try /healthz, /readyz or "
                  "/metrics\"}"};
      }
      http::response<http::string_body> res{
          static_cast<http::status>(answer.status), req.version()};
      res.set(http::field::content_type, answer.content_type);
      res.keep_alive(false);
      res.body() = answer.body;
      if (res.body().empty() || res.body().back() != '\n') res.body() += '\n';
      res.prepare_payload();
      http::write(socket, res, rec);
      socket.shutdown(tcp::socket::shutdown_both, rec);
    }
  });
  return bound;
}

void HttpEndpoints::Stop() {
  if (!thread_.joinable()) return;
  beast::error_code ec;
  // Closing from another thread does not reliably wake accept(); shutting
  // the socket down does on Linux.
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  impl_->acceptor.close(ec);
  thread_.join();
}

}  // namespace herald::rpc
