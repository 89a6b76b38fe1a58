#include "server/session/wire.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/runtime/proto_time.h"
#include "server/session/spec_convert.h"

namespace herald::session {

using engine::DeliveryId;
using nlohmann::json;

namespace {

// Parses a `_json` field that must hold a JSON object (or be empty).
absl::StatusOr<json> ParseObjectField(const std::string& text,
                                      const char* field) {
  if (text.empty()) return json::object();
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is not a JSON object: ", text.substr(0, 200)));
  }
  return j;
}

}  // namespace

absl::optional<DeliveryId> ParseDeliveryId(absl::string_view text) {
  if (!absl::ConsumePrefix(&text, "d-") || text.empty() || text.size() > 19) {
    return absl::nullopt;
  }
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return absl::nullopt;
    }
  }
  DeliveryId id = 0;
  if (!absl::SimpleAtoi(text, &id) || id == 0) return absl::nullopt;
  return id;
}

void RefsToWire(const engine::Delivery& d, v1::ResourceRef* r,
                v1::ObjectRef* o) {
  if (d.resource == nullptr) return;
  r->set_group(d.resource->group);
  r->set_version(d.resource->version);
  r->set_plural(d.resource->plural);
  r->set_kind(d.resource->kind);
  r->set_namespaced(d.resource->namespaced);
  o->set_namespace_(d.ns);
  o->set_name(d.name);
  o->set_uid(d.uid);
  o->set_resource_version(d.resource_version);
}

void DeliveryToWire(const engine::Delivery& d, v1::Delivery* out) {
  out->Clear();
  out->set_delivery_id(engine::DeliveryName(d.id));
  out->set_handler_id(d.handler_id);
  out->set_cause(static_cast<v1::Cause>(d.cause));
  if (d.resource != nullptr) {
    RefsToWire(d, out->mutable_resource(), out->mutable_object());
  }
  if (d.object != nullptr) out->set_body_json(d.object->json);
  out->set_old_json(d.old_json);
  out->set_new_json(d.new_json);
  out->set_diff_json(d.diff_json);
  out->set_retry(d.retry);
  if (d.started) *out->mutable_started() = runtime::ToProtoTime(*d.started);
  out->set_memo_json(d.memo_json);
  for (const auto& [name, text] : d.indices_json) {
    (*out->mutable_indices_json())[name] = text;
  }
  out->set_event_type(d.event_type);
  for (const auto& id : d.done_subhandler_ids) {
    out->add_done_subhandler_ids(id);
  }
  out->set_restarted(d.restarted);
}

engine::Registration RegistrationFromWire(const v1::Register& request) {
  engine::Registration out;
  out.process_name = request.process_name();
  out.client = request.client();
  out.credits = request.credits();
  out.handlers.reserve(request.handlers_size());
  for (const v1::HandlerSpec& wire : request.handlers()) {
    out.handlers.push_back({wire.id(), SpecFromWire(wire)});
  }
  return out;
}

absl::StatusOr<engine::Changes> ChangesFromWire(
    const v1::ObjectChanges& changes) {
  engine::Changes out;
  auto p = ParseObjectField(changes.patch_json(), "patch_json");
  if (!p.ok()) return p.status();
  auto sp = ParseObjectField(changes.status_patch_json(), "status_patch_json");
  if (!sp.ok()) return sp.status();
  auto mp = ParseObjectField(changes.memo_patch_json(), "memo_patch_json");
  if (!mp.ok()) return mp.status();
  out.patch = *std::move(p);
  out.status_patch = *std::move(sp);
  out.memo_patch = *std::move(mp);
  out.events.reserve(changes.events_size());
  for (const auto& e : changes.events()) {
    out.events.push_back(
        {static_cast<engine::EventType>(e.type()), e.reason(), e.message()});
  }
  return out;
}

engine::Outcome OutcomeFromWire(const v1::Outcome& outcome,
                                DeliveryId delivery) {
  engine::Outcome out;
  out.delivery_id = delivery;
  out.status = static_cast<engine::OutcomeStatus>(outcome.status());
  out.message = outcome.message();
  if (outcome.has_delay()) {
    out.delay = runtime::FromProtoDuration(outcome.delay());
  }
  out.children.reserve(outcome.subhandlers_size());
  for (const auto& child : outcome.subhandlers()) {
    engine::ChildOutcome c;
    c.id = child.id();
    c.status = static_cast<engine::OutcomeStatus>(child.status());
    c.message = child.message();
    if (child.has_delay()) c.delay = runtime::FromProtoDuration(child.delay());
    out.children.push_back(std::move(c));
  }
  if (outcome.has_changes()) {
    auto changes = ChangesFromWire(outcome.changes());
    if (!changes.ok()) {
      out.malformed = changes.status();
      return out;
    }
    out.changes = *std::move(changes);
  }
  if (!outcome.result_json().empty()) {
    out.result = json::parse(outcome.result_json(), nullptr, false);
    if (out.result.is_discarded()) {
      out.malformed = absl::InvalidArgumentError(absl::StrCat(
          "result_json is not JSON: ", outcome.result_json().substr(0, 200)));
      out.result = nullptr;
      out.changes = engine::Changes();
    }
  }
  return out;
}

v1::ConnectResponse RegisteredMessage(const engine::RegistrationAnswer& answer,
                                      engine::StreamId stream,
                                      uint64_t max_message_bytes,
                                      const std::string& version) {
  v1::ConnectResponse msg;
  auto* r = msg.mutable_registered();
  r->set_stream_id(engine::StreamName(stream));
  r->set_max_message_bytes(max_message_bytes);
  r->set_sidecar_version(version);
  for (const auto& id : answer.accepted) r->add_accepted_handler_ids(id);
  for (const auto& e : answer.rejected) {
    auto* rej = r->add_rejections();
    rej->set_handler_id(e.handler_id);
    rej->set_reason(e.reason);
  }
  for (const auto& e : answer.pending) {
    auto* p = r->add_pending();
    p->set_handler_id(e.handler_id);
    p->set_reason(e.reason);
  }
  return msg;
}

v1::ConnectResponse AckMessage(DeliveryId delivery) {
  v1::ConnectResponse msg;
  msg.mutable_outcome_ack()->set_delivery_id(engine::DeliveryName(delivery));
  return msg;
}

v1::ConnectResponse StopMessage(DeliveryId delivery, engine::StopReason reason,
                                bool force) {
  v1::ConnectResponse msg;
  auto* stop = msg.mutable_stop();
  stop->set_delivery_id(engine::DeliveryName(delivery));
  stop->set_reason(static_cast<v1::StopReason>(reason));
  stop->set_force(force);
  return msg;
}

v1::ConnectResponse ProtocolErrorMessage(v1::ProtocolErrorCode code,
                                         const std::string& delivery_id,
                                         const std::string& message) {
  v1::ConnectResponse msg;
  auto* e = msg.mutable_protocol_error();
  e->set_code(code);
  e->set_delivery_id(delivery_id);
  e->set_message(message);
  return msg;
}

v1::ProtocolErrorCode WireCode(engine::StreamError code) {
  switch (code) {
    case engine::StreamError::kNotRegistered:
      return v1::PROTOCOL_ERROR_CODE_NOT_REGISTERED;
    case engine::StreamError::kUnknownDelivery:
      return v1::PROTOCOL_ERROR_CODE_UNKNOWN_DELIVERY;
    case engine::StreamError::kDuplicateOutcome:
      return v1::PROTOCOL_ERROR_CODE_DUPLICATE_OUTCOME;
    case engine::StreamError::kMalformedJson:
      return v1::PROTOCOL_ERROR_CODE_MALFORMED_JSON;
    case engine::StreamError::kPatchRejected:
      return v1::PROTOCOL_ERROR_CODE_PATCH_REJECTED;
    case engine::StreamError::kInvalidArgument:
      return v1::PROTOCOL_ERROR_CODE_INVALID_ARGUMENT;
  }
  return v1::PROTOCOL_ERROR_CODE_UNSPECIFIED;
}

void WireSink::Registered(const engine::RegistrationAnswer& answer) {
  Write(RegisteredMessage(answer, stream_, max_message_bytes_, version_));
}

void WireSink::Deliver(const engine::Delivery& delivery) {
  v1::ConnectResponse msg;
  DeliveryToWire(delivery, msg.mutable_delivery());
  Write(std::move(msg));
}

void WireSink::Stop(DeliveryId delivery, engine::StopReason reason,
                    bool force) {
  Write(StopMessage(delivery, reason, force));
}

void WireSink::Error(engine::StreamError code, DeliveryId delivery,
                     const std::string& message) {
  Write(ProtocolErrorMessage(
      WireCode(code), delivery == 0 ? "" : engine::DeliveryName(delivery),
      message));
}

}  // namespace herald::session
