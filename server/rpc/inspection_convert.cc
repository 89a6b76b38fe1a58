#include "server/rpc/inspection_convert.h"

#include "google/protobuf/util/json_util.h"
#include "server/runtime/proto_time.h"

namespace herald::rpc {

using runtime::ToProtoTime;

namespace {

void FillObject(const kube::ResourceInfo& r, const cache::ObjectKey& key,
                v1::ObjectRef* object, v1::ResourceRef* resource) {
  object->set_namespace_(key.ns);
  object->set_name(key.name);
  FillRef(r, resource);
}

v1::WatchState StateOf(const engine::ResourceSnapshot& s) {
  using State = kube::ResourceWatch::State;
  if (s.state == State::kWatching) {
    return s.health.backing_off ? v1::WATCH_STATE_BACKING_OFF
           : s.synced           ? v1::WATCH_STATE_WATCHING
                                : v1::WATCH_STATE_LISTING;
  }
  return s.state == State::kWaitingForResource
             ? v1::WATCH_STATE_WAITING_FOR_RESOURCE
         : s.health.backing_off ? v1::WATCH_STATE_BACKING_OFF
                                : v1::WATCH_STATE_UNSPECIFIED;
}

}  // namespace

void FillRef(const kube::ResourceInfo& r, v1::ResourceRef* out) {
  out->set_group(r.group);
  out->set_version(r.version);
  out->set_plural(r.plural);
  out->set_kind(r.kind);
  out->set_namespaced(r.namespaced);
}

v1::Cause PurposeCause(const std::string& purpose) {
  if (purpose == "create") return v1::CAUSE_CREATE;
  if (purpose == "update") return v1::CAUSE_UPDATE;
  if (purpose == "delete") return v1::CAUSE_DELETE;
  if (purpose == "resume") return v1::CAUSE_RESUME;
  return v1::CAUSE_UNSPECIFIED;
}

v1::GetStatusResponse ToProto(const engine::StatusSnapshot& s) {
  v1::GetStatusResponse out;
  out.set_version(s.version);
  *out.mutable_started() = ToProtoTime(s.started);
  out.set_ready(s.ready);
  out.set_api_server(s.api_server);
  out.set_annotation_prefix(s.annotation_prefix);
  if (s.leadership.enabled) {
    v1::LeaderElection* e = out.mutable_leader_election();
    e->set_leading(s.leadership.leading);
    e->set_identity(s.leadership.identity);
    e->set_holder(s.leadership.holder);
    e->set_lease_namespace(s.leadership.lease_namespace);
    e->set_lease_name(s.leadership.lease_name);
  }
  return out;
}

void ToProto(const engine::ResourceSnapshot& s, v1::WatchedResource* out) {
  if (s.state == kube::ResourceWatch::State::kWatching) {
    FillRef(s.resource, out->mutable_resource());
  } else {
    out->mutable_resource()->set_plural(s.name);
  }
  out->set_state(StateOf(s));
  out->set_resource_version(s.health.resource_version);
  out->set_last_error(s.health.last_error);
  out->set_scope(s.scope);
  out->set_object_count(s.object_count);
  if (s.last_event != absl::InfinitePast()) {
    *out->mutable_last_event() = ToProtoTime(s.last_event);
  }
}

void ToProto(const engine::HandlerSnapshot& s, v1::HandlerInfo* out) {
  out->set_handler_id(s.handler_id);
  if (s.resource) FillRef(*s.resource, out->mutable_resource());
  out->set_resource_name(s.resource_name);
  out->set_cause(static_cast<v1::Cause>(s.cause));
  out->set_pending_reason(s.pending_reason);
  out->set_process_count(s.process_count);
  out->set_deliveries(s.stats.deliveries);
  out->set_successes(s.stats.successes);
  out->set_temporary_failures(s.stats.temporary_failures);
  out->set_permanent_failures(s.stats.permanent_failures);
  if (s.latency_p50) {
    *out->mutable_latency_p50() = runtime::ToProtoDuration(*s.latency_p50);
  }
  if (s.latency_p99) {
    *out->mutable_latency_p99() = runtime::ToProtoDuration(*s.latency_p99);
  }
}

void ToProto(const engine::ProcessSnapshot& s, v1::ProcessInfo* out) {
  out->set_stream_id(engine::StreamName(s.stream));
  out->set_process_name(s.process_name);
  out->set_client(s.client);
  out->set_peer(s.peer);
  *out->mutable_connected() = ToProtoTime(s.connected);
  out->set_credits(s.credits);
  for (const auto& d : s.in_flight) {
    out->add_in_flight_delivery_ids(engine::DeliveryName(d));
  }
  for (const auto& h : s.handler_ids) out->add_handler_ids(h);
}

void ToProto(const engine::QueueSnapshot& s, v1::ObjectQueue* out) {
  FillObject(s.resource, s.key, out->mutable_object(), out->mutable_resource());
  if (s.delivery != 0) out->set_delivery_id(engine::DeliveryName(s.delivery));
  out->set_handler_id(s.handler_id);
  out->set_purpose(s.purpose);
  out->set_pending(s.pending);
  out->set_queued_events(static_cast<uint32_t>(s.queued_events));
  if (s.wake_at != absl::InfiniteFuture()) {
    *out->mutable_wake_at() = ToProtoTime(s.wake_at);
  }
  out->set_waiting_for_indices(s.waiting_for_indices);
}

void ToProto(const engine::TimerSnapshot& s, v1::ScheduledTimer* out) {
  FillObject(s.resource, s.key, out->mutable_object(), out->mutable_resource());
  out->set_handler_id(s.handler_id);
  if (s.next_run != absl::InfiniteFuture()) {
    *out->mutable_next_run() = ToProtoTime(s.next_run);
  }
  out->set_due(s.due);
}

void ToProto(const engine::DaemonSnapshot& s, v1::DaemonInfo* out) {
  FillObject(s.resource, s.key, out->mutable_object(), out->mutable_resource());
  out->set_handler_id(s.handler_id);
  if (s.delivery != 0) out->set_delivery_id(engine::DeliveryName(s.delivery));
  if (s.stream != 0) out->set_stream_id(engine::StreamName(s.stream));
  out->set_state(s.state);
  if (s.started != absl::InfinitePast()) {
    *out->mutable_started() = ToProtoTime(s.started);
  }
  out->set_restarts(s.restarts);
  if (s.restart_at != absl::InfiniteFuture()) {
    *out->mutable_restart_at() = ToProtoTime(s.restart_at);
  }
}

void ToProto(const engine::ProgressSnapshot& s, v1::HandlerProgress* out) {
  const engine::ProgressRecord& r = s.record;
  out->set_handler_id(s.handler_id);
  out->set_purpose(PurposeCause(r.purpose));
  if (r.started) *out->mutable_started() = ToProtoTime(*r.started);
  if (r.stopped) *out->mutable_stopped() = ToProtoTime(*r.stopped);
  if (r.delayed) *out->mutable_delayed() = ToProtoTime(*r.delayed);
  out->set_retries(r.retries);
  out->set_success(r.success);
  out->set_failure(r.failure);
  if (r.message) out->set_message(*r.message);
}

void ToProto(const engine::IndexSnapshot::Entry& s, v1::IndexEntry* out) {
  // Values of an index are JSON from a handler or an object: always valid.
  google::protobuf::util::JsonStringToMessage(s.key.dump(), out->mutable_key());
  for (const auto& value : s.values) {
    google::protobuf::util::JsonStringToMessage(value.dump(),
                                                out->add_values());
  }
}

}  // namespace herald::rpc
