// The sidecar's in-memory copy of the watched objects of one resource.
//
// Objects are kept as minified JSON text plus the few metadata fields that
// are looked up often. A DOM per object would cost about 7x its JSON size
// (nlohmann) or 1.3x plus parsing work on every change (RapidJSON); the text
// costs about 1x, and every consumer parses the object anyway when an event
// about it arrives. representation_benchmark.cc measures the choice.
#ifndef HERALD_SERVER_CACHE_OBJECT_STORE_H_
#define HERALD_SERVER_CACHE_OBJECT_STORE_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/optional.h"

namespace herald::cache {

struct ObjectKey {
  std::string ns;  // Empty for cluster-scoped objects.
  std::string name;
  bool operator<(const ObjectKey& o) const {
    return ns != o.ns ? ns < o.ns : name < o.name;
  }
  bool operator==(const ObjectKey& o) const {
    return ns == o.ns && name == o.name;
  }
};

struct CachedObject {
  ObjectKey key;
  std::string uid;
  std::string resource_version;
  // Minified JSON of the whole object.
  std::string json;
};

// Thread-safe. Readers get copies of shared immutable objects, so a reader
// never blocks a writer for longer than a map lookup.
class ObjectStore {
 public:
  enum class Change { kAdded, kModified, kUnchanged };

  // Stores the object (replacing the one with the same namespace and name).
  // kUnchanged when the stored one has the same uid and resourceVersion.
  Change Upsert(CachedObject object);
  // Removes by key; returns the removed object if there was one.
  std::shared_ptr<const CachedObject> Remove(const ObjectKey& key);

  std::shared_ptr<const CachedObject> Get(const ObjectKey& key) const;
  // Objects in namespace `ns` (all when `all_namespaces`), ordered by key.
  std::vector<std::shared_ptr<const CachedObject>> List(
      const std::string& ns, bool all_namespaces) const;
  // Key to resourceVersion of the objects in `ns` (all when
  // `all_namespaces`): what a relist compares against.
  std::map<ObjectKey, std::string> Versions(const std::string& ns,
                                            bool all_namespaces) const;
  size_t size() const;
  // Total bytes of JSON held.
  size_t json_bytes() const;

 private:
  mutable absl::Mutex mu_;
  std::map<ObjectKey, std::shared_ptr<const CachedObject>> objects_
      ABSL_GUARDED_BY(mu_);
  size_t json_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace herald::cache

#endif  // HERALD_SERVER_CACHE_OBJECT_STORE_H_
