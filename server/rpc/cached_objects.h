// ListObjects and GetObject answered from the watched resources' caches
// (thread-safe object stores), on the calling thread, without the engine
// loop: parsing objects for a label selector and for the answer costs the
// engine nothing however large the cache.
#ifndef HERALD_SERVER_RPC_CACHED_OBJECTS_H_
#define HERALD_SERVER_RPC_CACHED_OBJECTS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "herald/v1/inspection.pb.h"
#include "nlohmann/json.hpp"
#include "server/cache/object_store.h"
#include "server/engine/inspection.h"
#include "server/kube/label_selector.h"

namespace herald::rpc {

// The watched cache that `resource` (as users write it) names, or null.
const engine::WatchedCache* FindCache(
    const std::vector<engine::WatchedCache>& caches,
    const std::string& resource);

// A ListObjects request, checked.
struct ObjectQuery {
  kube::LabelSelector selector;
  // Matching objects skipped (from the page token).
  size_t skip = 0;
  // At most this many objects.
  uint32_t page_size = 100;
};
// InvalidArgument naming the selector or the page token when either is bad.
absl::StatusOr<ObjectQuery> ParseObjectQuery(
    const v1::ListObjectsRequest& request);

// The objects of `store` in namespace `ns` (all when empty) that match the
// query's selector, one page, in key order; `next_page_token` set when more
// match.
void ListObjects(const cache::ObjectStore& store, const std::string& ns,
                 const ObjectQuery& query, v1::ListObjectsResponse* response);

// One object of a watched cache.
struct FoundObject {
  kube::ResourceInfo resource;
  cache::ObjectKey key;
  std::shared_ptr<const cache::CachedObject> object;
  // "kopfexamples.v1.kopf.dev ns/name", for errors.
  std::string what;
};
// NotFound when the resource is not watched or the object not cached. The
// namespace is ignored for cluster-scoped resources.
absl::StatusOr<FoundObject> FindObject(
    const std::vector<engine::WatchedCache>& caches,
    const v1::GetObjectRequest& request);

// The object's body into `response->object`; Internal naming the object
// when it cannot be shown as a Struct.
absl::Status AddObject(const FoundObject& found,
                       v1::GetObjectResponse* response);
// The memo and progress into `response`; Internal naming the object when
// the memo cannot be shown as a Struct.
absl::Status AddObjectState(const FoundObject& found,
                            const engine::ObjectStateSnapshot& state,
                            v1::GetObjectResponse* response);

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_CACHED_OBJECTS_H_
