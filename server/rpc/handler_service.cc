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

namespace herald::rpc {
namespace {

class Reactor;

// What the engine holds to send on a stream. Outlives the reactor: after the
// stream ends, sends are dropped. Every protocol error sent to a handler
// process passes here, whoever built it, and is logged here.
class Channel : public engine::StreamSink {
 public:
  Channel(std::string stream_id, std::string peer)
      : stream_id_(std::move(stream_id)), peer_(std::move(peer)) {}
  void Send(const v1::ConnectResponse& message) override;
  void Send(v1::ConnectResponse&& message) override;
  void Detach();
  void Attach(Reactor* r) {
    std::lock_guard<std::mutex> lock(mu_);
    reactor_ = r;
  }

 private:
  // Logs `message` if it is a protocol error; `sent` false when the stream
  // has ended.
  void LogIfError(const v1::ConnectResponse& message, bool sent) const;

  const std::string stream_id_;
  const std::string peer_;
  std::mutex mu_;
  Reactor* reactor_ = nullptr;
  friend class Reactor;
};

class Reactor
    : public grpc::ServerBidiReactor<v1::ConnectRequest, v1::ConnectResponse> {
 public:
  Reactor(engine::Engine* engine, grpc::CallbackServerContext* context)
      : engine_(engine),
        context_(context),
        stream_id_(engine->NewStreamId()),
        peer_(context->peer()),
        channel_(std::make_shared<Channel>(stream_id_, peer_)) {
    channel_->Attach(this);
    StartRead(&request_);
  }

  // Called by Channel under its lock.
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
    Handle(request_);
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
    channel_->Detach();
    if (registered_) engine_->Disconnect(stream_id_);
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
    const std::string who = absl::StrCat(stream_id_, " (", peer_, ")");
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

  void Error(v1::ProtocolErrorCode code, const std::string& delivery_id,
             const std::string& message) {
    channel_->Send(engine::ProtocolErrorMessage(code, delivery_id, message));
  }

  void Handle(const v1::ConnectRequest& req) {
    const size_t size = req.ByteSizeLong();
    if (size > engine_->max_message_bytes()) {
      std::string id = req.has_outcome() ? req.outcome().delivery_id() : "";
      Error(v1::PROTOCOL_ERROR_CODE_MESSAGE_TOO_LARGE, id,
            absl::StrCat("message of ", size, " bytes exceeds the limit of ",
                         engine_->max_message_bytes(),
                         " bytes (--max_message_bytes); it was dropped"));
      return;
    }
    switch (req.message_case()) {
      case v1::ConnectRequest::kRegister:
        if (registered_) {
          Error(v1::PROTOCOL_ERROR_CODE_ALREADY_REGISTERED, "",
                "register may be sent once per stream");
          return;
        }
        {
          // Refused (bad arguments): not registered, so the process can
          // send a corrected register on the same stream.
          absl::Status st =
              engine_->Register(stream_id_, req.register_(), peer_, channel_);
          if (!st.ok()) {
            Error(v1::PROTOCOL_ERROR_CODE_INVALID_ARGUMENT, "",
                  std::string(st.message()));
            return;
          }
        }
        registered_ = true;
        return;
      case v1::ConnectRequest::kOutcome:
        if (!registered_) break;
        engine_->Outcome(stream_id_, req.outcome());
        return;
      case v1::ConnectRequest::kSetCredits:
        if (!registered_) break;
        engine_->SetCredits(stream_id_, req.set_credits().credits());
        return;
      case v1::ConnectRequest::kInterimChanges:
        if (!registered_) break;
        engine_->InterimChanges(stream_id_, req.interim_changes());
        return;
      default:
        Error(v1::PROTOCOL_ERROR_CODE_INVALID_ARGUMENT, "",
              "empty message: set one of register, outcome, set_credits, "
              "interim_changes");
        return;
    }
    Error(v1::PROTOCOL_ERROR_CODE_NOT_REGISTERED, "",
          "send register before anything else");
  }

  engine::Engine* engine_;
  grpc::CallbackServerContext* context_;
  const std::string stream_id_;
  const std::string peer_;
  std::shared_ptr<Channel> channel_;
  v1::ConnectRequest request_;
  bool registered_ = false;  // Read side only.
  std::mutex mu_;
  std::deque<v1::ConnectResponse> out_;
  bool writing_ = false;
  bool reading_done_ = false;
  bool finished_ = false;
  bool cancelled_ = false;
  bool read_failed_uncancelled_ = false;
};

void Channel::LogIfError(const v1::ConnectResponse& message, bool sent) const {
  if (!message.has_protocol_error()) return;
  const v1::ProtocolError& e = message.protocol_error();
  HERALD_LOG(WARNING, "rpc")
      << stream_id_ << " (" << peer_
      << "): " << (sent ? "sent" : "could not send (the stream has ended)")
      << " protocol error " << v1::ProtocolErrorCode_Name(e.code())
      << " (delivery "
      << (e.delivery_id().empty() ? "none"
                                  : absl::StrCat("'", e.delivery_id(), "'"))
      << "): " << e.message();
}

void Channel::Send(const v1::ConnectResponse& message) {
  std::lock_guard<std::mutex> lock(mu_);
  LogIfError(message, reactor_ != nullptr);
  if (reactor_ != nullptr) reactor_->Enqueue(message);
}

void Channel::Send(v1::ConnectResponse&& message) {
  std::lock_guard<std::mutex> lock(mu_);
  LogIfError(message, reactor_ != nullptr);
  if (reactor_ != nullptr) reactor_->Enqueue(std::move(message));
}

void Channel::Detach() {
  std::lock_guard<std::mutex> lock(mu_);
  reactor_ = nullptr;
}

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
