#include "server/session/handler_session.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/runtime/logging.h"

namespace herald::session {

std::shared_ptr<HandlerSession> HandlerSession::Create(engine::Engine* engine,
                                                       std::string peer,
                                                       Writer writer) {
  return std::shared_ptr<HandlerSession>(new HandlerSession(
      engine, engine->NewStreamId(), std::move(peer), std::move(writer)));
}

HandlerSession::HandlerSession(engine::Engine* engine, engine::StreamId stream,
                               std::string peer, Writer writer)
    : WireSink(stream, engine->max_message_bytes(), engine->version()),
      engine_(engine),
      name_(engine::StreamName(stream)),
      peer_(std::move(peer)),
      writer_(std::move(writer)) {}

void HandlerSession::Write(v1::ConnectResponse message) {
  absl::MutexLock lock(&mu_);
  if (message.has_protocol_error()) {
    // Every protocol error a process is sent passes here.
    const v1::ProtocolError& e = message.protocol_error();
    HERALD_LOG(WARNING, "rpc")
        << name_ << " (" << peer_
        << "): " << (writer_ ? "sent" : "could not send (the stream has ended)")
        << " protocol error " << v1::ProtocolErrorCode_Name(e.code())
        << " (delivery "
        << (e.delivery_id().empty() ? "none"
                                    : absl::StrCat("'", e.delivery_id(), "'"))
        << "): " << e.message();
  }
  if (writer_) writer_(std::move(message));
}

void HandlerSession::Close() {
  {
    absl::MutexLock lock(&mu_);
    writer_ = nullptr;
  }
  if (registered_) engine_->Disconnect(stream());
}

void HandlerSession::Refuse(v1::ProtocolErrorCode code,
                            const std::string& delivery_id,
                            const std::string& message) {
  Write(ProtocolErrorMessage(code, delivery_id, message));
}

void HandlerSession::Deliver(const engine::Delivery& delivery) {
  {
    absl::MutexLock lock(&mu_);
    in_flight_.insert(delivery.id);
  }
  WireSink::Deliver(delivery);
}

void HandlerSession::Forget(engine::DeliveryId delivery) {
  absl::MutexLock lock(&mu_);
  in_flight_.erase(delivery);
}

void HandlerSession::TakeOutcome(const v1::Outcome& outcome) {
  // Enough to tell a repeated outcome from an unknown one for as long as a
  // process plausibly repeats itself.
  constexpr size_t kRecentDone = 4096;
  const std::string& text = outcome.delivery_id();
  absl::optional<engine::DeliveryId> id = ParseDeliveryId(text);
  enum { kTaken, kDuplicate, kUnknown } verdict = kUnknown;
  if (id) {
    absl::MutexLock lock(&mu_);
    if (in_flight_.erase(*id)) {
      verdict = kTaken;
      recent_done_.push_back(*id);
      recent_done_set_.insert(*id);
      if (recent_done_.size() > kRecentDone) {
        recent_done_set_.erase(recent_done_.front());
        recent_done_.pop_front();
      }
    } else if (recent_done_set_.contains(*id)) {
      verdict = kDuplicate;
    }
  }
  switch (verdict) {
    case kTaken:
      // Acknowledged here, on the thread that read it; the engine frees the
      // credit on its loop.
      Write(AckMessage(*id));
      engine_->OnOutcome(stream(), OutcomeFromWire(outcome, *id));
      return;
    case kDuplicate:
      Refuse(v1::PROTOCOL_ERROR_CODE_DUPLICATE_OUTCOME, text,
             absl::StrCat("delivery '", text,
                          "' was already answered on this stream"));
      return;
    case kUnknown:
      Refuse(v1::PROTOCOL_ERROR_CODE_UNKNOWN_DELIVERY, text,
             absl::StrCat("delivery '", text,
                          "' is not in flight on this stream"));
      return;
  }
}

void HandlerSession::Handle(const v1::ConnectRequest& req) {
  const size_t size = req.ByteSizeLong();
  if (size > engine_->max_message_bytes()) {
    std::string id = req.has_outcome() ? req.outcome().delivery_id() : "";
    Refuse(v1::PROTOCOL_ERROR_CODE_MESSAGE_TOO_LARGE, id,
           absl::StrCat("message of ", size, " bytes exceeds the limit of ",
                        engine_->max_message_bytes(),
                        " bytes (--max_message_bytes); it was dropped"));
    return;
  }
  if (req.message_case() == v1::ConnectRequest::MESSAGE_NOT_SET) {
    Refuse(v1::PROTOCOL_ERROR_CODE_INVALID_ARGUMENT, "",
           "empty message: set one of register, outcome, set_credits, "
           "interim_changes");
    return;
  }
  if (req.has_register_()) {
    if (registered_) {
      Refuse(v1::PROTOCOL_ERROR_CODE_ALREADY_REGISTERED, "",
             "register may be sent once per stream");
      return;
    }
    // Refused (bad arguments): not registered, so the process can send a
    // corrected register on the same stream.
    absl::Status st =
        engine_->Register(stream(), RegistrationFromWire(req.register_()),
                          peer_, shared_from_this());
    if (!st.ok()) {
      Refuse(v1::PROTOCOL_ERROR_CODE_INVALID_ARGUMENT, "",
             std::string(st.message()));
      return;
    }
    registered_ = true;
    return;
  }
  if (!registered_) {
    Refuse(v1::PROTOCOL_ERROR_CODE_NOT_REGISTERED, "",
           "send register before anything else");
    return;
  }
  switch (req.message_case()) {
    case v1::ConnectRequest::kOutcome:
      TakeOutcome(req.outcome());
      return;
    case v1::ConnectRequest::kSetCredits:
      engine_->SetCredits(stream(), req.set_credits().credits());
      return;
    case v1::ConnectRequest::kInterimChanges: {
      const std::string& text = req.interim_changes().delivery_id();
      absl::optional<engine::DeliveryId> id = ParseDeliveryId(text);
      if (!id) {
        Refuse(v1::PROTOCOL_ERROR_CODE_UNKNOWN_DELIVERY, text,
               absl::StrCat("interim_changes: delivery '", text,
                            "' is not in flight on this stream"));
        return;
      }
      engine_->InterimChanges(stream(), *id,
                              ChangesFromWire(req.interim_changes().changes()));
      return;
    }
    default:
      return;
  }
}

}  // namespace herald::session
