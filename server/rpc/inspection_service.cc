#include "server/rpc/inspection_service.h"

#include <algorithm>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "server/engine/essence.h"
#include "server/engine/progress.h"
#include "server/kube/label_selector.h"
#include "server/runtime/proto_time.h"

namespace herald::rpc {
namespace {

using nlohmann::json;

using runtime::ToProtoTime;

void FillRef(const kube::ResourceInfo& r, v1::ResourceRef* out) {
  out->set_group(r.group);
  out->set_version(r.version);
  out->set_plural(r.plural);
  out->set_kind(r.kind);
  out->set_namespaced(r.namespaced);
}

void ToValue(const json& j, google::protobuf::Value* out);

void ToFields(const json& object, google::protobuf::Struct* out) {
  auto& fields = *out->mutable_fields();
  for (auto it = object.begin(); it != object.end(); ++it) {
    ToValue(it.value(), &fields[it.key()]);
  }
}

void ToValue(const json& j, google::protobuf::Value* out) {
  switch (j.type()) {
    case json::value_t::boolean:
      out->set_bool_value(j.get<bool>());
      break;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      out->set_number_value(j.get<double>());
      break;
    case json::value_t::string:
      out->set_string_value(j.get_ref<const std::string&>());
      break;
    case json::value_t::array: {
      auto* list = out->mutable_list_value();
      for (const auto& item : j) ToValue(item, list->add_values());
      break;
    }
    case json::value_t::object:
      ToFields(j, out->mutable_struct_value());
      break;
    default:
      out->set_null_value(google::protobuf::NULL_VALUE);
      break;
  }
}

// A cached object (or memo) as a Struct. Protobuf's JSON parser refuses
// objects nested more than about 33 levels (it re-parses what it built under
// the binary parser's recursion limit of 100, and each JSON level is three
// messages deep); those are built from nlohmann's DOM, which has no such
// limit. An error says why the text is no JSON object at all.
absl::Status JsonToStruct(const std::string& text,
                          google::protobuf::Struct* out) {
  if (google::protobuf::util::JsonStringToMessage(text, out).ok()) {
    return absl::OkStatus();
  }
  out->Clear();
  const json parsed = json::parse(text, nullptr, false);
  if (!parsed.is_object()) {
    return absl::InvalidArgumentError(
        parsed.is_discarded() ? "it is not valid JSON" : "it is not an object");
  }
  ToFields(parsed, out);
  return absl::OkStatus();
}

bool ToStruct(const std::string& text, google::protobuf::Struct* out) {
  return JsonToStruct(text, out).ok();
}

// A resource as users name it, matched against a watched one.
bool Names(const kube::ResourceInfo& r, const std::string& watch_name,
           const std::string& name) {
  if (name.empty()) return false;
  if (name == watch_name || name == r.FullName()) return true;
  std::string base = name.substr(0, name.find('.'));
  std::string rest = name.find('.') == std::string::npos
                         ? ""
                         : name.substr(name.find('.') + 1);
  if (!rest.empty() && rest != r.group &&
      rest != absl::StrCat(r.version, ".", r.group) && rest != r.version) {
    return false;
  }
  if (absl::EqualsIgnoreCase(base, r.plural) ||
      absl::EqualsIgnoreCase(base, r.singular) ||
      absl::EqualsIgnoreCase(base, r.kind)) {
    return true;
  }
  for (const auto& s : r.short_names) {
    if (absl::EqualsIgnoreCase(base, s)) return true;
  }
  return false;
}

kube::ResourceWatch* FindWatch(const engine::Engine::View& v,
                               const std::string& name) {
  for (auto* w : v.watches) {
    if (w->state() == kube::ResourceWatch::State::kWatching &&
        Names(w->resource(), w->name(), name)) {
      return w;
    }
  }
  return nullptr;
}

// The object's labels for a label selector: string values only, as
// Kubernetes keeps them.
std::optional<absl::string_view> LabelOf(const json& labels,
                                         absl::string_view key) {
  if (!labels.is_object()) return std::nullopt;
  auto it = labels.find(std::string(key));
  if (it == labels.end() || !it->is_string()) return std::nullopt;
  return absl::string_view(it->get_ref<const std::string&>());
}

v1::Cause PurposeCause(const std::string& purpose) {
  if (purpose == "create") return v1::CAUSE_CREATE;
  if (purpose == "update") return v1::CAUSE_UPDATE;
  if (purpose == "delete") return v1::CAUSE_DELETE;
  if (purpose == "resume") return v1::CAUSE_RESUME;
  return v1::CAUSE_UNSPECIFIED;
}

bool FilterMatches(const v1::ObjectFilter& f, const kube::ResourceInfo& r,
                   const cache::ObjectKey& key) {
  if (!f.resource().empty() && !Names(r, "", f.resource())) return false;
  if (!f.namespace_().empty() && f.namespace_() != key.ns) return false;
  if (!f.name().empty() && f.name() != key.name) return false;
  return true;
}

void FillObject(const kube::ResourceInfo& r, const cache::ObjectKey& key,
                v1::ObjectRef* object, v1::ResourceRef* resource) {
  object->set_namespace_(key.ns);
  object->set_name(key.name);
  FillRef(r, resource);
}

uint32_t LimitOf(uint32_t limit) { return limit == 0 ? 500 : limit; }

// "success", "temporary_error", ...: the status's name without its prefix,
// in lowercase; "unspecified" for values this build does not know.
std::string StatusName(v1::OutcomeStatus s) {
  if (!v1::OutcomeStatus_IsValid(s)) return "unspecified";
  return absl::AsciiStrToLower(
      absl::StripPrefix(v1::OutcomeStatus_Name(s), "OUTCOME_STATUS_"));
}

// Streams dispatch events to one grpcurl (or other) watcher. Events are
// converted on the engine loop and queued here; a watcher that cannot keep
// up loses events (counted in `dropped`), never slows the engine.
class DeliveryWatcher
    : public grpc::ServerWriteReactor<v1::WatchDeliveriesResponse> {
 public:
  DeliveryWatcher(engine::Engine* engine, v1::WatchDeliveriesRequest request)
      : engine_(engine), request_(std::move(request)) {
    subscription_ = engine_->Subscribe(
        [this](const engine::DispatchEvent& e) { OnEvent(e); });
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    out_.pop_front();
    writing_ = false;
    if (!ok) {
      Close();
      return;
    }
    WriteNextLocked();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    Close();
  }

  void OnDone() override {
    engine_->Unsubscribe(subscription_);
    // Events already posted may still arrive; they find `closed_`.
    auto* self = this;
    engine_->Inspect([self](const engine::Engine::View&) { delete self; });
  }

 private:
  static constexpr size_t kMaxQueued = 1000;

  void Close() {
    closed_ = true;
    if (!writing_ && !finished_) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }

  void OnEvent(const engine::DispatchEvent& e) {
    using Kind = engine::DispatchEvent::Kind;
    const v1::Delivery& d = *e.delivery;
    if (request_.outcomes_only() && e.kind != Kind::kOutcome) return;
    if (!request_.handler_id().empty() &&
        request_.handler_id() != d.handler_id()) {
      return;
    }
    const auto& f = request_.filter();
    if (!f.namespace_().empty() && f.namespace_() != d.object().namespace_()) {
      return;
    }
    if (!f.name().empty() && f.name() != d.object().name()) return;
    if (!f.resource().empty()) {
      kube::ResourceInfo r;
      r.group = d.resource().group();
      r.version = d.resource().version();
      r.plural = d.resource().plural();
      r.kind = d.resource().kind();
      if (!Names(r, "", f.resource())) return;
    }
    v1::WatchDeliveriesResponse m;
    *m.mutable_time() = ToProtoTime(absl::Now());
    m.set_kind(e.kind == Kind::kDelivery  ? "delivery"
               : e.kind == Kind::kOutcome ? "outcome"
                                          : "requeue");
    m.set_delivery_id(d.delivery_id());
    m.set_handler_id(d.handler_id());
    m.set_cause(d.cause());
    *m.mutable_object() = d.object();
    *m.mutable_resource() = d.resource();
    m.set_stream_id(e.stream_id);
    if (e.outcome != nullptr) {
      m.set_status(StatusName(e.outcome->status()));
      m.set_message(e.outcome->message());
      *m.mutable_latency() = runtime::ToProtoDuration(e.latency);
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    if (out_.size() >= kMaxQueued) {
      ++dropped_;
      return;
    }
    m.set_dropped(dropped_);
    dropped_ = 0;
    out_.push_back(std::move(m));
    WriteNextLocked();
  }

  void WriteNextLocked() {
    if (writing_) return;
    if (closed_) {
      Close();
      return;
    }
    if (out_.empty()) return;
    writing_ = true;
    StartWrite(&out_.front());
  }

  engine::Engine* engine_;
  const v1::WatchDeliveriesRequest request_;
  uint64_t subscription_ = 0;
  std::mutex mu_;
  std::deque<v1::WatchDeliveriesResponse> out_;
  bool writing_ = false;
  bool closed_ = false;
  bool finished_ = false;
  uint64_t dropped_ = 0;
};

}  // namespace

grpc::ServerUnaryReactor* InspectionService::ListQueues(
    grpc::CallbackServerContext* context, const v1::ListQueuesRequest* request,
    v1::ListQueuesResponse* response) {
  auto* reactor = context->DefaultReactor();
  engine_->Inspect([reactor, request, response](const engine::Engine::View& v) {
    const uint32_t limit = LimitOf(request->limit());
    uint32_t total = 0;
    for (const auto& q : v.processor.Queues()) {
      if (!FilterMatches(request->filter(), q.resource, q.key)) continue;
      if (total++ >= limit) continue;
      auto* out = response->add_queues();
      FillObject(q.resource, q.key, out->mutable_object(),
                 out->mutable_resource());
      out->set_delivery_id(q.delivery_id);
      out->set_handler_id(q.handler_id);
      out->set_purpose(q.purpose);
      out->set_pending(q.pending);
      out->set_queued_events(static_cast<uint32_t>(q.queued_events));
      if (q.wake_at != absl::InfiniteFuture()) {
        *out->mutable_wake_at() = ToProtoTime(q.wake_at);
      }
      out->set_waiting_for_indices(q.waiting_for_indices);
    }
    response->set_total(total);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* InspectionService::ListTimers(
    grpc::CallbackServerContext* context, const v1::ListTimersRequest* request,
    v1::ListTimersResponse* response) {
  auto* reactor = context->DefaultReactor();
  engine_->Inspect([reactor, request, response](const engine::Engine::View& v) {
    const uint32_t limit = LimitOf(request->limit());
    uint32_t total = 0;
    for (const auto& t : v.processor.Timers()) {
      if (!FilterMatches(request->filter(), t.resource, t.key)) continue;
      if (total++ >= limit) continue;
      auto* out = response->add_timers();
      FillObject(t.resource, t.key, out->mutable_object(),
                 out->mutable_resource());
      out->set_handler_id(t.handler_id);
      if (t.next_run != absl::InfiniteFuture()) {
        *out->mutable_next_run() = ToProtoTime(t.next_run);
      }
      out->set_due(t.due);
    }
    response->set_total(total);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* InspectionService::ListDaemons(
    grpc::CallbackServerContext* context, const v1::ListDaemonsRequest* request,
    v1::ListDaemonsResponse* response) {
  auto* reactor = context->DefaultReactor();
  engine_->Inspect([reactor, request, response](const engine::Engine::View& v) {
    const uint32_t limit = LimitOf(request->limit());
    uint32_t total = 0;
    for (const auto& d : v.processor.Daemons()) {
      if (!FilterMatches(request->filter(), d.resource, d.key)) continue;
      if (total++ >= limit) continue;
      auto* out = response->add_daemons();
      FillObject(d.resource, d.key, out->mutable_object(),
                 out->mutable_resource());
      out->set_handler_id(d.handler_id);
      out->set_delivery_id(d.delivery_id);
      out->set_stream_id(d.stream_id);
      out->set_state(d.state);
      if (d.started != absl::InfinitePast()) {
        *out->mutable_started() = ToProtoTime(d.started);
      }
      out->set_restarts(d.restarts);
      if (d.restart_at != absl::InfiniteFuture()) {
        *out->mutable_restart_at() = ToProtoTime(d.restart_at);
      }
    }
    response->set_total(total);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerWriteReactor<v1::WatchDeliveriesResponse>*
InspectionService::WatchDeliveries(grpc::CallbackServerContext* context,
                                   const v1::WatchDeliveriesRequest* request) {
  return new DeliveryWatcher(engine_, *request);
}

grpc::ServerUnaryReactor* InspectionService::GetStatus(
    grpc::CallbackServerContext* context, const v1::GetStatusRequest*,
    v1::GetStatusResponse* response) {
  auto* reactor = context->DefaultReactor();
  engine_->Inspect([reactor, response](const engine::Engine::View& v) {
    response->set_version(v.options.version);
    *response->mutable_started() = ToProtoTime(v.started);
    bool ready = !v.watches.empty() && v.processor.IndicesReady();
    for (auto* w : v.watches) ready = ready && w->synced();
    response->set_ready(ready);
    response->set_api_server(v.api_server);
    response->set_annotation_prefix(v.options.engine.prefix);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* InspectionService::ListResources(
    grpc::CallbackServerContext* context, const v1::ListResourcesRequest*,
    v1::ListResourcesResponse* response) {
  auto* reactor = context->DefaultReactor();
  engine_->Inspect([reactor, response](const engine::Engine::View& v) {
    for (auto* w : v.watches) {
      auto* r = response->add_resources();
      const auto state = w->state();
      const kube::ResourceWatch::Health health = w->health();
      if (state == kube::ResourceWatch::State::kWatching) {
        FillRef(w->resource(), r->mutable_resource());
        r->set_state(health.backing_off ? v1::WATCH_STATE_BACKING_OFF
                     : w->synced()      ? v1::WATCH_STATE_WATCHING
                                        : v1::WATCH_STATE_LISTING);
      } else {
        r->mutable_resource()->set_plural(w->name());
        r->set_state(state == kube::ResourceWatch::State::kWaitingForResource
                         ? v1::WATCH_STATE_WAITING_FOR_RESOURCE
                     : health.backing_off ? v1::WATCH_STATE_BACKING_OFF
                                          : v1::WATCH_STATE_UNSPECIFIED);
      }
      r->set_resource_version(health.resource_version);
      r->set_last_error(health.last_error);
      r->set_scope(w->scope().spec());
      r->set_object_count(w->store().size());
      if (w->last_event() != absl::InfinitePast()) {
        *r->mutable_last_event() = ToProtoTime(w->last_event());
      }
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* InspectionService::ListObjects(
    grpc::CallbackServerContext* context, const v1::ListObjectsRequest* request,
    v1::ListObjectsResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto selector = kube::LabelSelector::Parse(request->label_selector());
  if (!selector.ok()) {
    reactor->Finish(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("label_selector \"", request->label_selector(),
                     "\": ", selector.status().message())));
    return reactor;
  }
  const uint32_t page = request->page_size() ? request->page_size() : 100;
  size_t skip = 0;
  if (!request->page_token().empty() &&
      !absl::SimpleAtoi(request->page_token(), &skip)) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "page_token: not one this service gave"));
    return reactor;
  }
  // The loop only finds the watch and takes the objects (shared, immutable);
  // parsing them for the selector and the answer happens here, on this
  // thread, so that a large cache does not hold up the engine.
  bool found = false;
  std::vector<std::shared_ptr<const cache::CachedObject>> objects;
  if (!engine_->InspectAndWait([&](const engine::Engine::View& v) {
        kube::ResourceWatch* w = FindWatch(v, request->resource());
        if (w == nullptr) return;
        found = true;
        objects = w->store().List(request->namespace_(),
                                  request->namespace_().empty());
      })) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "the sidecar is stopping"));
    return reactor;
  }
  if (!found) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::NOT_FOUND,
                     absl::StrCat("resource '", request->resource(),
                                  "' is not watched (see ListResources)")));
    return reactor;
  }
  size_t matched = 0;
  for (const auto& obj : objects) {
    if (!selector->empty()) {
      json body = json::parse(obj->json, nullptr, false);
      const json& labels = engine::Resolve(body, {"metadata", "labels"});
      if (!selector->Matches([&labels](absl::string_view key) {
            return LabelOf(labels, key);
          })) {
        continue;
      }
    }
    if (matched++ < skip) continue;
    if (static_cast<uint32_t>(response->objects_size()) == page) {
      response->set_next_page_token(std::to_string(skip + page));
      break;
    }
    ToStruct(obj->json, response->add_objects());
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* InspectionService::GetObject(
    grpc::CallbackServerContext* context, const v1::GetObjectRequest* request,
    v1::GetObjectResponse* response) {
  auto* reactor = context->DefaultReactor();
  engine_->Inspect([reactor, request, response](const engine::Engine::View& v) {
    kube::ResourceWatch* w = FindWatch(v, request->resource());
    if (w == nullptr) {
      reactor->Finish(grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat("resource '", request->resource(), "' is not watched")));
      return;
    }
    const kube::ResourceInfo r = w->resource();
    cache::ObjectKey key{r.namespaced ? request->namespace_() : "",
                         request->name()};
    auto obj = w->store().Get(key);
    if (obj == nullptr) {
      reactor->Finish(grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat(r.FullName(), " ", key.ns, key.ns.empty() ? "" : "/",
                       key.name, " is not in the cache")));
      return;
    }
    const std::string what = absl::StrCat(r.FullName(), " ", key.ns,
                                          key.ns.empty() ? "" : "/", key.name);
    if (absl::Status st = JsonToStruct(obj->json, response->mutable_object());
        !st.ok()) {
      reactor->Finish(
          grpc::Status(grpc::StatusCode::INTERNAL,
                       absl::StrCat(what,
                                    ": the cached object cannot be shown as a "
                                    "google.protobuf.Struct: ",
                                    st.message())));
      return;
    }
    if (const json* memo = v.processor.MemoOf(r.FullName(), key)) {
      if (absl::Status st =
              JsonToStruct(memo->dump(), response->mutable_memo());
          !st.ok()) {
        reactor->Finish(
            grpc::Status(grpc::StatusCode::INTERNAL,
                         absl::StrCat(what,
                                      ": the memo cannot be shown as a "
                                      "google.protobuf.Struct: ",
                                      st.message())));
        return;
      }
    }
    json body = json::parse(obj->json, nullptr, false);
    const json& ann = engine::Resolve(body, {"metadata", "annotations"});
    for (const engine::Handler* h : v.registry.ForResource(r.FullName())) {
      for (const auto& k : v.processor.keys().Keys(h->id(), body)) {
        if (!ann.is_object() || !ann.contains(k) || !ann[k].is_string())
          continue;
        auto rec = engine::DecodeProgress(ann[k].get<std::string>());
        if (!rec.ok()) break;
        auto* p = response->add_progress();
        p->set_handler_id(h->id());
        p->set_purpose(PurposeCause(rec->purpose));
        if (rec->started) *p->mutable_started() = ToProtoTime(*rec->started);
        if (rec->stopped) *p->mutable_stopped() = ToProtoTime(*rec->stopped);
        if (rec->delayed) *p->mutable_delayed() = ToProtoTime(*rec->delayed);
        p->set_retries(rec->retries);
        p->set_success(rec->success);
        p->set_failure(rec->failure);
        if (rec->message) p->set_message(*rec->message);
        break;
      }
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* InspectionService::ListHandlers(
    grpc::CallbackServerContext* context, const v1::ListHandlersRequest*,
    v1::ListHandlersResponse* response) {
  auto* reactor = context->DefaultReactor();
  engine_->Inspect([reactor, response](const engine::Engine::View& v) {
    const auto streams = v.dispatcher.Streams();
    for (const engine::Handler* h : v.registry.All()) {
      auto* info = response->add_handlers();
      info->set_handler_id(h->id());
      FillRef(h->resource, info->mutable_resource());
      info->set_resource_name(h->spec.resource());
      info->set_cause(h->cause());
      uint32_t processes = 0;
      for (const auto& s : streams) {
        processes +=
            std::count(s.handler_ids.begin(), s.handler_ids.end(), h->id()) > 0;
      }
      info->set_process_count(processes);
      auto it = v.processor.stats().find(h->id());
      if (it != v.processor.stats().end()) {
        info->set_deliveries(it->second.deliveries);
        info->set_successes(it->second.successes);
        info->set_temporary_failures(it->second.temporary_failures);
        info->set_permanent_failures(it->second.permanent_failures);
      }
      auto lat = v.dispatcher.latencies().find(h->id());
      if (lat != v.dispatcher.latencies().end() && lat->second.count() > 0) {
        *info->mutable_latency_p50() =
            runtime::ToProtoDuration(lat->second.Quantile(0.5));
        *info->mutable_latency_p99() =
            runtime::ToProtoDuration(lat->second.Quantile(0.99));
      }
    }
    for (const auto& [id, p] : v.registry.pending()) {
      auto* info = response->add_handlers();
      info->set_handler_id(id);
      info->set_resource_name(p.spec.resource());
      info->set_cause(p.spec.cause());
      info->set_pending_reason(p.reason);
      uint32_t processes = 0;
      for (const auto& s : streams) {
        processes +=
            std::count(s.handler_ids.begin(), s.handler_ids.end(), id) > 0;
      }
      info->set_process_count(processes);
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* InspectionService::ListProcesses(
    grpc::CallbackServerContext* context, const v1::ListProcessesRequest*,
    v1::ListProcessesResponse* response) {
  auto* reactor = context->DefaultReactor();
  engine_->Inspect([reactor, response](const engine::Engine::View& v) {
    for (const auto& s : v.dispatcher.Streams()) {
      auto* p = response->add_processes();
      p->set_stream_id(s.stream_id);
      p->set_process_name(s.process_name);
      p->set_client(s.client);
      p->set_peer(s.peer);
      *p->mutable_connected() = ToProtoTime(s.connected);
      p->set_credits(s.credits);
      for (const auto& d : s.in_flight) p->add_in_flight_delivery_ids(d);
      for (const auto& h : s.handler_ids) p->add_handler_ids(h);
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* InspectionService::GetIndex(
    grpc::CallbackServerContext* context, const v1::GetIndexRequest* request,
    v1::GetIndexResponse* response) {
  auto* reactor = context->DefaultReactor();
  engine_->Inspect([reactor, request, response](const engine::Engine::View& v) {
    const engine::Handler* h = v.registry.Find(request->name());
    if (h == nullptr || h->cause() != v1::CAUSE_INDEX) {
      reactor->Finish(
          grpc::Status(grpc::StatusCode::NOT_FOUND,
                       absl::StrCat("no index named '", request->name(), "'")));
      return;
    }
    json only;
    if (!request->key_json().empty()) {
      only = json::parse(request->key_json(), nullptr, false);
      if (only.is_discarded()) {
        reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                     "key_json is not JSON"));
        return;
      }
    }
    for (const auto& entry : v.processor.IndexJson(request->name())) {
      if (!request->key_json().empty() && entry[0] != only) continue;
      auto* e = response->add_entries();
      google::protobuf::util::JsonStringToMessage(entry[0].dump(),
                                                  e->mutable_key());
      for (const auto& value : entry[1]) {
        google::protobuf::util::JsonStringToMessage(value.dump(),
                                                    e->add_values());
      }
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

}  // namespace herald::rpc
