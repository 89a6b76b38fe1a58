#include "server/rpc/handler_service.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/runtime/logging.h"
#include "server/session/handler_session.h"

namespace herald::rpc {
namespace {

class Reactor
    : public grpc::ServerBidiReactor<v1::ConnectRequest, v1::ConnectResponse> {
 public:
  Reactor(engine::Engine* engine, grpc::CallbackServerContext* context)
      : engine_(engine),
        context_(context),
        session_(session::HandlerSession::Create(
            engine, context->peer(),
            [this](v1::ConnectResponse m) { Enqueue(std::move(m)); })) {
    StartRead(&request_);
  }

  // Called by the session under its lock, which it holds until Close: the
  // reactor is alive.
  void Enqueue(v1::ConnectResponse message) {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    out_.push_back(std::move(message));
    if (!writing_) {
      writing_ = true;
      StartWrite(&out_.front());
    }
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    out_.pop_front();
    if (!ok) {
      out_.clear();
      writing_ = false;
      MaybeFinishLocked();
      return;
    }
    if (!out_.empty() && !finished_) {
      StartWrite(&out_.front());
    } else {
      writing_ = false;
      MaybeFinishLocked();
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::lock_guard<std::mutex> lock(mu_);
      // Not cancelled yet: the process closed its side, or gRPC refused
      // what it sent (it then cancels the call).
      read_failed_uncancelled_ = !context_->IsCancelled();
      reading_done_ = true;
      MaybeFinishLocked();
      return;
    }
    session_->Handle(request_);
    request_.Clear();
    StartRead(&request_);
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    reading_done_ = true;
    MaybeFinishLocked();
  }

  void OnDone() override {
    LogEnd();
    session_->Close();
    delete this;
  }

 private:
  // Says why the stream ended. gRPC's server API does not tell the status a
  // cancelled call ended with. The order of the callbacks hints at it: when
  // gRPC refuses a message (over its own size limit), the read fails and
  // then gRPC cancels the call; when the process goes away, the call is
  // cancelled and then the read fails. A hint only: both lines name the
  // limit and the status the process gets.
  void LogEnd() {
    bool cancelled, refused;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled = cancelled_;
      refused = cancelled_ && read_failed_uncancelled_;
    }
    const std::string who =
        absl::StrCat(session_->name(), " (", context_->peer(), ")");
    const std::string limit = absl::StrCat(
        "gRPC's own limit of ",
        HandlerService::GrpcMessageLimit(engine_->max_message_bytes()),
        " bytes (2 x --max_message_bytes + 1 MiB)");
    if (!cancelled) {
      HERALD_LOG(INFO, "rpc") << who << ": the process closed the stream";
    } else if (engine_->stopping()) {
      HERALD_LOG(INFO, "rpc") << who << ": closed, the sidecar is stopping";
    } else if (refused) {
      HERALD_LOG(WARNING, "rpc")
          << who
          << ": gRPC refused a message from the process and ended the "
             "stream: most likely a message over "
          << limit
          << "; the process gets status RESOURCE_EXHAUSTED \"Received "
             "message larger than max (<size> vs. <limit>)\"";
    } else {
      HERALD_LOG(WARNING, "rpc")
          << who
          << ": the stream was cancelled: the process went away or its "
             "connection broke, or, if it still runs, gRPC refused a message "
             "from it (over "
          << limit << "; the process then gets status RESOURCE_EXHAUSTED)";
    }
  }

  void MaybeFinishLocked() {
    if (reading_done_ && !writing_ && !finished_) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }

  engine::Engine* engine_;
  grpc::CallbackServerContext* context_;
  std::shared_ptr<session::HandlerSession> session_;
  v1::ConnectRequest request_;
  std::mutex mu_;
  std::deque<v1::ConnectResponse> out_;
  bool writing_ = false;
  bool reading_done_ = false;
  bool finished_ = false;
  bool cancelled_ = false;
  bool read_failed_uncancelled_ = false;
};

}  // namespace

int HandlerService::GrpcMessageLimit(uint64_t max_message_bytes) {
  return static_cast<int>(
      std::min<uint64_t>(max_message_bytes * 2 + (1 << 20), INT32_MAX));
}

grpc::ServerBidiReactor<v1::ConnectRequest, v1::ConnectResponse>*
HandlerService::Connect(grpc::CallbackServerContext* context) {
  return new Reactor(engine_, context);
}

}  // namespace herald::rpc
