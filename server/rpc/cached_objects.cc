#include "server/rpc/cached_objects.h"

#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/engine/essence.h"
#include "server/rpc/inspection_convert.h"
#include "server/rpc/json_struct.h"
#include "server/rpc/object_filter.h"

namespace herald::rpc {

using nlohmann::json;

namespace {

// The object's labels for a label selector: string values only, as
// Kubernetes keeps them.
std::optional<absl::string_view> LabelOf(const json& labels,
                                         absl::string_view key) {
  if (!labels.is_object()) return std::nullopt;
  auto it = labels.find(std::string(key));
  if (it == labels.end() || !it->is_string()) return std::nullopt;
  return absl::string_view(it->get_ref<const std::string&>());
}

bool Selected(const kube::LabelSelector& selector, const std::string& text) {
  if (selector.empty()) return true;
  const json body = json::parse(text, nullptr, false);
  const json& labels = engine::Resolve(body, {"metadata", "labels"});
  return selector.Matches(
      [&labels](absl::string_view key) { return LabelOf(labels, key); });
}

}  // namespace

const engine::WatchedCache* FindCache(
    const std::vector<engine::WatchedCache>& caches,
    const std::string& resource) {
  for (const auto& c : caches) {
    if (NamesResource(c.resource, c.name, resource)) return &c;
  }
  return nullptr;
}

absl::StatusOr<ObjectQuery> ParseObjectQuery(
    const v1::ListObjectsRequest& request) {
  ObjectQuery query;
  auto selector = kube::LabelSelector::Parse(request.label_selector());
  if (!selector.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("label_selector \"", request.label_selector(),
                     "\": ", selector.status().message()));
  }
  query.selector = *std::move(selector);
  if (request.page_size() != 0) query.page_size = request.page_size();
  if (!request.page_token().empty() &&
      !absl::SimpleAtoi(request.page_token(), &query.skip)) {
    return absl::InvalidArgumentError("page_token: not one this service gave");
  }
  return query;
}

void ListObjects(const cache::ObjectStore& store, const std::string& ns,
                 const ObjectQuery& query, v1::ListObjectsResponse* response) {
  size_t matched = 0;
  for (const auto& obj : store.List(ns, ns.empty())) {
    if (!Selected(query.selector, obj->json)) continue;
    if (matched++ < query.skip) continue;
    if (static_cast<uint32_t>(response->objects_size()) == query.page_size) {
      response->set_next_page_token(
          std::to_string(query.skip + query.page_size));
      break;
    }
    // The store keeps JSON objects; one that could not be shown would be an
    // empty Struct in its place.
    JsonToStruct(obj->json, response->add_objects()).IgnoreError();
  }
}

absl::StatusOr<FoundObject> FindObject(
    const std::vector<engine::WatchedCache>& caches,
    const v1::GetObjectRequest& request) {
  const engine::WatchedCache* c = FindCache(caches, request.resource());
  if (c == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("resource '", request.resource(), "' is not watched"));
  }
  FoundObject found;
  found.resource = c->resource;
  found.key = {c->resource.namespaced ? request.namespace_() : "",
               request.name()};
  found.what = absl::StrCat(c->resource.FullName(), " ", found.key.ns,
                            found.key.ns.empty() ? "" : "/", found.key.name);
  found.object = c->store->Get(found.key);
  if (found.object == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(found.what, " is not in the cache"));
  }
  return found;
}

absl::Status AddObject(const FoundObject& found,
                       v1::GetObjectResponse* response) {
  if (absl::Status st =
          JsonToStruct(found.object->json, response->mutable_object());
      !st.ok()) {
    return absl::InternalError(absl::StrCat(
        found.what,
        ": the cached object cannot be shown as a google.protobuf.Struct: ",
        st.message()));
  }
  return absl::OkStatus();
}

absl::Status AddObjectState(const FoundObject& found,
                            const engine::ObjectStateSnapshot& state,
                            v1::GetObjectResponse* response) {
  if (state.memo) {
    if (absl::Status st =
            JsonToStruct(state.memo->dump(), response->mutable_memo());
        !st.ok()) {
      return absl::InternalError(absl::StrCat(
          found.what,
          ": the memo cannot be shown as a google.protobuf.Struct: ",
          st.message()));
    }
  }
  for (const auto& p : state.progress) ToProto(p, response->add_progress());
  return absl::OkStatus();
}

}  // namespace herald::rpc
