#include "server/rpc/inspection_service.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/rpc/cached_objects.h"
#include "server/rpc/delivery_stream.h"
#include "server/rpc/inspection_convert.h"

namespace herald::rpc {
namespace {

using nlohmann::json;

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  // absl::StatusCode and grpc::StatusCode share their values.
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context,
                                 const absl::Status& status) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpc(status));
  return reactor;
}

// Adds every snapshot to a repeated field.
template <typename Snapshot, typename Message>
void AddAll(const std::vector<Snapshot>& all,
            google::protobuf::RepeatedPtrField<Message>* out) {
  for (const Snapshot& s : all) ToProto(s, out->Add());
}

}  // namespace

grpc::ServerUnaryReactor* InspectionService::GetStatus(
    grpc::CallbackServerContext* context, const v1::GetStatusRequest*,
    v1::GetStatusResponse* response) {
  auto status = engine_->Overview();
  if (status.ok()) *response = ToProto(*status);
  return Answer(context, status.status());
}

grpc::ServerUnaryReactor* InspectionService::ListResources(
    grpc::CallbackServerContext* context, const v1::ListResourcesRequest*,
    v1::ListResourcesResponse* response) {
  auto resources = engine_->Resources();
  if (resources.ok()) AddAll(*resources, response->mutable_resources());
  return Answer(context, resources.status());
}

grpc::ServerUnaryReactor* InspectionService::ListObjects(
    grpc::CallbackServerContext* context, const v1::ListObjectsRequest* request,
    v1::ListObjectsResponse* response) {
  auto query = ParseObjectQuery(*request);
  if (!query.ok()) return Answer(context, query.status());
  auto caches = engine_->Caches();
  if (!caches.ok()) return Answer(context, caches.status());
  const engine::WatchedCache* cache = FindCache(*caches, request->resource());
  if (cache == nullptr) {
    return Answer(context, absl::NotFoundError(absl::StrCat(
                               "resource '", request->resource(),
                               "' is not watched (see ListResources)")));
  }
  rpc::ListObjects(*cache->store, request->namespace_(), *query, response);
  return Answer(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InspectionService::GetObject(
    grpc::CallbackServerContext* context, const v1::GetObjectRequest* request,
    v1::GetObjectResponse* response) {
  auto caches = engine_->Caches();
  if (!caches.ok()) return Answer(context, caches.status());
  auto found = FindObject(*caches, *request);
  if (!found.ok()) return Answer(context, found.status());
  if (absl::Status st = AddObject(*found, response); !st.ok()) {
    return Answer(context, st);
  }
  // Memos and progress records are the loop's: only they are read there.
  const json body = json::parse(found->object->json, nullptr, false);
  auto state = engine_->ObjectState(found->resource, found->key, body);
  if (!state.ok()) return Answer(context, state.status());
  return Answer(context, AddObjectState(*found, *state, response));
}

grpc::ServerUnaryReactor* InspectionService::ListHandlers(
    grpc::CallbackServerContext* context, const v1::ListHandlersRequest*,
    v1::ListHandlersResponse* response) {
  auto handlers = engine_->Handlers();
  if (handlers.ok()) AddAll(*handlers, response->mutable_handlers());
  return Answer(context, handlers.status());
}

grpc::ServerUnaryReactor* InspectionService::ListProcesses(
    grpc::CallbackServerContext* context, const v1::ListProcessesRequest*,
    v1::ListProcessesResponse* response) {
  auto processes = engine_->Processes();
  if (processes.ok()) AddAll(*processes, response->mutable_processes());
  return Answer(context, processes.status());
}

grpc::ServerUnaryReactor* InspectionService::GetIndex(
    grpc::CallbackServerContext* context, const v1::GetIndexRequest* request,
    v1::GetIndexResponse* response) {
  auto index = engine_->Index(request->name());
  if (!index.ok()) return Answer(context, index.status());
  json only;
  if (!request->key_json().empty()) {
    only = json::parse(request->key_json(), nullptr, false);
    if (only.is_discarded()) {
      return Answer(context,
                    absl::InvalidArgumentError("key_json is not JSON"));
    }
  }
  for (const auto& entry : index->entries) {
    if (!request->key_json().empty() && entry.key != only) continue;
    ToProto(entry, response->add_entries());
  }
  return Answer(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InspectionService::ListQueues(
    grpc::CallbackServerContext* context, const v1::ListQueuesRequest* request,
    v1::ListQueuesResponse* response) {
  auto queues = engine_->Queues();
  if (queues.ok()) {
    response->set_total(AddMatching(*queues, request->filter(),
                                    request->limit(),
                                    response->mutable_queues()));
  }
  return Answer(context, queues.status());
}

grpc::ServerUnaryReactor* InspectionService::ListTimers(
    grpc::CallbackServerContext* context, const v1::ListTimersRequest* request,
    v1::ListTimersResponse* response) {
  auto timers = engine_->Timers();
  if (timers.ok()) {
    response->set_total(AddMatching(*timers, request->filter(),
                                    request->limit(),
                                    response->mutable_timers()));
  }
  return Answer(context, timers.status());
}

grpc::ServerUnaryReactor* InspectionService::ListDaemons(
    grpc::CallbackServerContext* context, const v1::ListDaemonsRequest* request,
    v1::ListDaemonsResponse* response) {
  auto daemons = engine_->Daemons();
  if (daemons.ok()) {
    response->set_total(AddMatching(*daemons, request->filter(),
                                    request->limit(),
                                    response->mutable_daemons()));
  }
  return Answer(context, daemons.status());
}

grpc::ServerWriteReactor<v1::WatchDeliveriesResponse>*
InspectionService::WatchDeliveries(grpc::CallbackServerContext*,
                                   const v1::WatchDeliveriesRequest* request) {
  return new DeliveryStream(engine_, *request);
}

}  // namespace herald::rpc
