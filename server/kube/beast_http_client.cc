#include "server/kube/beast_http_client.h"

#include <openssl/ssl.h>
#include <sys/stat.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace herald::kube {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr size_t kMaxIdleConnections = 8;
constexpr size_t kMaxErrorBody = 1 << 20;
constexpr char kUserAgent[] = "herald/0.1";

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return std::chrono::nanoseconds(absl::ToInt64Nanoseconds(d));
}

bool IsIpAddress(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// The bearer token, re-read from its file when the file changes.
class TokenSource {
 public:
  TokenSource(std::string token, std::string file)
      : token_(std::move(token)), file_(std::move(file)) {}

  std::string Get() {
    absl::MutexLock lock(&mu_);
    if (file_.empty()) return token_;
    struct stat st;
    if (::stat(file_.c_str(), &st) == 0 &&
        (st.st_mtim.tv_sec != mtime_.tv_sec ||
         st.st_mtim.tv_nsec != mtime_.tv_nsec || st.st_size != size_)) {
      std::ifstream in(file_);
      std::stringstream ss;
      ss << in.rdbuf();
      if (in || in.eof()) {
        token_ = std::string(absl::StripAsciiWhitespace(ss.str()));
        mtime_ = st.st_mtim;
        size_ = st.st_size;
      }
    }
    return token_;
  }

 private:
  absl::Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  const std::string file_;
  struct timespec mtime_ ABSL_GUARDED_BY(mu_) = {0, 0};
  off_t size_ ABSL_GUARDED_BY(mu_) = -1;
};

absl::Status NetError(absl::string_view what, const beast::error_code& ec) {
  if (ec == beast::error::timeout) {
    return absl::DeadlineExceededError(absl::StrCat(what, ": timed out"));
  }
  if (ec == asio::error::operation_aborted) {
    return absl::CancelledError(absl::StrCat(what, ": cancelled"));
  }
  return absl::UnavailableError(absl::StrCat(what, ": ", ec.message()));
}

// One connection with its own io_context. Operations run asynchronously on
// that context and the calling thread runs it until they finish, so every
// operation has a deadline. Owned by one thread at a time; Close() may be
// posted from others.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(const ServerUrl& url, ssl::context* tls_ctx,
             const std::string& server_name)
      : url_(url), server_name_(server_name) {
    if (url_.tls) {
      tls_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc_,
                                                                    *tls_ctx);
    } else {
      plain_ = std::make_unique<beast::tcp_stream>(ioc_);
    }
  }

  beast::tcp_stream& Tcp() {
    return tls_ ? beast::get_lowest_layer(*tls_) : *plain_;
  }

  // Runs the asynchronous operation `start(handler)` to completion.
  template <class Start>
  beast::error_code Run(absl::Duration timeout, Start&& start) {
    beast::error_code result = asio::error::would_block;
    Tcp().expires_after(ToChrono(timeout));
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc_.restart();
    ioc_.run();
    return result;
  }

  // Reads what the socket has (at least one byte) into buffer(), within
  // `timeout`.
  beast::error_code ReadSome(absl::Duration timeout) {
    beast::error_code result = asio::error::would_block;
    size_t got = 0;
    Tcp().expires_after(ToChrono(timeout));
    auto space = buffer_.prepare(kReadChunk);
    auto handler = [&result, &got](beast::error_code ec, size_t n) {
      result = ec;
      got = n;
    };
    if (tls_) {
      tls_->async_read_some(space, handler);
    } else {
      plain_->async_read_some(space, handler);
    }
    ioc_.restart();
    ioc_.run();
    buffer_.commit(got);
    return result;
  }
  static constexpr size_t kReadChunk = 256 * 1024;

  absl::Status Connect(absl::Duration timeout) {
    tcp::resolver resolver(ioc_);
    beast::error_code ec;
    auto endpoints = resolver.resolve(url_.host, url_.port, ec);
    if (ec) {
      return NetError(absl::StrCat("resolving ", url_.host), ec);
    }
    ec = Run(timeout,
             [&](auto handler) { Tcp().async_connect(endpoints, handler); });
    if (ec)
      return NetError(absl::StrCat("connecting to ", url_.ToString()), ec);
    Tcp().socket().set_option(tcp::no_delay(true), ec);
    if (tls_) {
      if (!IsIpAddress(server_name_)) {
        SSL_set_tlsext_host_name(tls_->native_handle(), server_name_.c_str());
      }
      ec = Run(timeout, [&](auto handler) {
        tls_->async_handshake(ssl::stream_base::client, handler);
      });
      if (ec) {
        return NetError(absl::StrCat("TLS handshake with ", url_.ToString()),
                        ec);
      }
    }
    return absl::OkStatus();
  }

  template <class Fn>
  auto WithStream(Fn&& fn) {
    if (tls_) return fn(*tls_);
    return fn(*plain_);
  }

  void CloseFromAnyThread() {
    std::weak_ptr<Connection> weak = weak_from_this();
    asio::post(ioc_, [weak] {
      if (auto self = weak.lock()) {
        beast::error_code ignored;
        self->Tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
        self->Tcp().socket().close(ignored);
      }
    });
    ioc_.stop();
  }

  beast::flat_buffer& buffer() { return buffer_; }
  bool reused = false;

 private:
  asio::io_context ioc_;
  const ServerUrl url_;
  const std::string server_name_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls_;
  std::unique_ptr<beast::tcp_stream> plain_;
  beast::flat_buffer buffer_;
};

class BeastHttpClient : public HttpClient {
 public:
  BeastHttpClient(const ClusterConfig& config,
                  std::unique_ptr<ssl::context> tls_ctx)
      : url_(config.server),
        server_name_(config.tls_server_name.empty() ? config.server.host
                                                    : config.tls_server_name),
        host_header_(IsIpAddress(url_.host) &&
                             url_.host.find(':') != std::string::npos
                         ? absl::StrCat("[", url_.host, "]:", url_.port)
                         : absl::StrCat(url_.host, ":", url_.port)),
        tls_ctx_(std::move(tls_ctx)),
        token_(config.token, config.token_file) {}

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    // A pooled connection may have been closed by the server while idle; a
    // failure on a reused connection before any answer is retried once on a
    // fresh one.
    for (int attempt = 0;; ++attempt) {
      auto conn = Take(attempt > 0);
      if (!conn.ok()) return conn.status();
      bool reused = (*conn)->reused;
      bool answered = false;
      auto result = SendOn(*conn, request, &answered);
      if (result.ok()) return result;
      if (!reused || answered || attempt > 0 ||
          absl::IsDeadlineExceeded(result.status())) {
        return result;
      }
    }
  }

  absl::StatusOr<HttpResponse> Stream(const HttpRequest& request,
                                      absl::Duration idle_timeout,
                                      const DataCallback& on_data,
                                      StreamCanceller* canceller) override {
    auto conn =
        std::make_shared<Connection>(url_, tls_ctx_.get(), server_name_);
    if (canceller != nullptr) {
      std::weak_ptr<Connection> weak = conn;
      canceller->SetOnCancel([weak] {
        if (auto c = weak.lock()) c->CloseFromAnyThread();
      });
    }
    struct Unhook {
      StreamCanceller* c;
      ~Unhook() {
        if (c != nullptr) c->SetOnCancel(nullptr);
      }
    } unhook{canceller};
    auto cancelled = [&] {
      return canceller != nullptr && canceller->cancelled();
    };
    if (cancelled()) return absl::CancelledError("stream cancelled");

    absl::Status st = conn->Connect(request.timeout);
    if (!st.ok())
      return cancelled() ? absl::CancelledError("stream cancelled") : st;
    auto req = Build(request);
    beast::error_code ec = conn->WithStream([&](auto& s) {
      return conn->Run(request.timeout, [&](auto handler) {
        http::async_write(s, req, handler);
      });
    });
    if (ec) {
      return cancelled() ? absl::CancelledError("stream cancelled")
                         : NetError("sending the request", ec);
    }
    http::response_parser<http::buffer_body> parser;
    // Not boost::none: Boost 1.74 compares the Content-Length against the
    // empty optional and always reports body_limit.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    ec = conn->WithStream([&](auto& s) {
      return conn->Run(request.timeout, [&](auto handler) {
        http::async_read_header(s, conn->buffer(), parser, handler);
      });
    });
    if (ec) {
      return cancelled() ? absl::CancelledError("stream cancelled")
                         : NetError("reading the response header", ec);
    }
    HttpResponse response;
    response.status = parser.get().result_int();
    auto ra = parser.get().find(http::field::retry_after);
    if (ra != parser.get().end())
      response.retry_after = std::string(ra->value());
    const bool ok_status = response.status >= 200 && response.status < 300;
    // An empty first chunk tells the caller the request was answered.
    if (ok_status && !on_data(absl::string_view())) return response;

    // The body is parsed from what is buffered, and the socket is read only
    // when the buffer runs dry: a busy watch stream brings many events per
    // read, and each read (a timer, an epoll round) is the expensive part.
    std::vector<char> buf(64 * 1024);
    auto deliver = [&]() -> bool {
      const size_t n = buf.size() - parser.get().body().size;
      parser.get().body().data = buf.data();
      parser.get().body().size = buf.size();
      if (n == 0) return true;
      if (ok_status) return on_data(absl::string_view(buf.data(), n));
      if (response.body.size() < kMaxErrorBody)
        response.body.append(buf.data(), n);
      return true;
    };
    parser.get().body().data = buf.data();
    parser.get().body().size = buf.size();
    while (!parser.is_done()) {
      if (cancelled()) return absl::CancelledError("stream cancelled");
      beast::error_code pec;
      while (conn->buffer().size() > 0 && !parser.is_done()) {
        const size_t used = parser.put(conn->buffer().data(), pec);
        conn->buffer().consume(used);
        if (pec == http::error::need_buffer) {
          pec = {};
          if (!deliver()) return response;
          continue;
        }
        if (pec == http::error::need_more) {
          pec = {};
          break;
        }
        if (pec) break;
        if (used == 0) break;
      }
      if (!deliver()) return response;
      if (pec) return NetError("reading the stream", pec);
      if (parser.is_done()) break;
      beast::error_code ec = conn->ReadSome(idle_timeout);
      if (ec == http::error::end_of_stream || ec == asio::error::eof ||
          ec == ssl::error::stream_truncated) {
        break;
      }
      if (ec) {
        if (cancelled()) return absl::CancelledError("stream cancelled");
        if (ec == beast::error::timeout) {
          return absl::DeadlineExceededError(absl::StrCat(
              "stream idle for ", absl::FormatDuration(idle_timeout)));
        }
        return NetError("reading the stream", ec);
      }
    }
    return response;
  }

 private:
  http::request<http::string_body> Build(const HttpRequest& r) {
    http::request<http::string_body> req;
    req.method_string(r.method);
    req.target(url_.base_path + r.target);
    req.version(11);
    req.set(http::field::host, host_header_);
    req.set(http::field::user_agent, kUserAgent);
    req.set(http::field::accept, "application/json");
    std::string token = token_.Get();
    if (!token.empty()) {
      req.set(http::field::authorization, absl::StrCat("Bearer ", token));
    }
    if (!r.body.empty() || r.method == "POST" || r.method == "PATCH" ||
        r.method == "PUT") {
      req.set(http::field::content_type,
              r.content_type.empty() ? "application/json" : r.content_type);
      req.body() = r.body;
      req.prepare_payload();
    }
    req.keep_alive(true);
    return req;
  }

  absl::StatusOr<std::shared_ptr<Connection>> Take(bool fresh) {
    if (!fresh) {
      absl::MutexLock lock(&mu_);
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        c->reused = true;
        return c;
      }
    }
    auto c = std::make_shared<Connection>(url_, tls_ctx_.get(), server_name_);
    absl::Status st = c->Connect(absl::Seconds(10));
    if (!st.ok()) return st;
    return c;
  }

  void GiveBack(std::shared_ptr<Connection> c) {
    absl::MutexLock lock(&mu_);
    if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(c));
  }

  absl::StatusOr<HttpResponse> SendOn(std::shared_ptr<Connection> conn,
                                      const HttpRequest& request,
                                      bool* answered) {
    auto req = Build(request);
    beast::error_code ec = conn->WithStream([&](auto& s) {
      return conn->Run(request.timeout, [&](auto handler) {
        http::async_write(s, req, handler);
      });
    });
    if (ec)
      return NetError(absl::StrCat(request.method, " ", request.target), ec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    ec = conn->WithStream([&](auto& s) {
      return conn->Run(request.timeout, [&](auto handler) {
        http::async_read(s, conn->buffer(), parser, handler);
      });
    });
    if (ec)
      return NetError(absl::StrCat(request.method, " ", request.target), ec);
    *answered = true;
    auto& res = parser.get();
    HttpResponse out;
    out.status = res.result_int();
    auto ra = res.find(http::field::retry_after);
    if (ra != res.end()) out.retry_after = std::string(ra->value());
    out.body = std::move(res.body());
    if (res.keep_alive()) GiveBack(std::move(conn));
    return out;
  }

  const ServerUrl url_;
  const std::string server_name_;
  const std::string host_header_;
  std::unique_ptr<ssl::context> tls_ctx_;
  TokenSource token_;
  absl::Mutex mu_;
  std::vector<std::shared_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpClient>> NewBeastHttpClient(
    const ClusterConfig& config) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  const std::string where = config.source.empty() ? "" : config.source + ": ";
  try {
    if (config.insecure_skip_tls_verify) {
      ctx->set_verify_mode(ssl::verify_none);
    } else {
      ctx->set_verify_mode(ssl::verify_peer);
      ctx->set_verify_callback(ssl::host_name_verification(
          config.tls_server_name.empty() ? config.server.host
                                         : config.tls_server_name));
      if (!config.ca_pem.empty()) {
        try {
          ctx->add_certificate_authority(asio::buffer(config.ca_pem));
        } catch (const boost::system::system_error& e) {
          return absl::InvalidArgumentError(absl::StrCat(
              where, "certificate authority: cannot load: ", e.what()));
        }
      } else {
        ctx->set_default_verify_paths();
      }
    }
    if (!config.client_cert_pem.empty()) {
      try {
        ctx->use_certificate_chain(asio::buffer(config.client_cert_pem));
      } catch (const boost::system::system_error& e) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "client certificate: cannot load: ", e.what()));
      }
      try {
        ctx->use_private_key(asio::buffer(config.client_key_pem),
                             ssl::context::pem);
      } catch (const boost::system::system_error& e) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "client key: cannot load: ", e.what()));
      }
    }
  } catch (const boost::system::system_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "TLS setup: ", e.what()));
  }
  return std::unique_ptr<HttpClient>(
      new BeastHttpClient(config, std::move(ctx)));
}

}  // namespace herald::kube
