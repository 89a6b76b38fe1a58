// Kopf's in-memory indices: per index handler, each object's entries, and
// the indices as handlers receive them ([[key, [values...]], ...]).
//
// Index handlers' entries come from their deliveries' results; declarative
// indices (by a label or a field) are computed here from the object itself,
// keeping only the key (the value is the object's reference). An index is
// serialized once per change of any index, not once per delivery.
//
// Also what gates handlers, as in Kopf: until every index is filled from its
// resource's initial listing, and while an object's latest state is not
// indexed yet, no other handler runs.
//
// Not thread-safe: owned by the engine loop. Nothing here delivers.
#ifndef HERALD_SERVER_ENGINE_INDICES_H_
#define HERALD_SERVER_ENGINE_INDICES_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/cache/object_store.h"
#include "server/engine/registry.h"

namespace herald::engine {

// A declarative index's key for an object: its label's value or its field's
// value; null when the object has neither or does not pass the handler's
// filters (then it is not in the index).
nlohmann::json DeclarativeKey(const Handler& h, const nlohmann::json& body);

// An index handler's result as entries [[key, value], ...]: an object
// {key: value, ...} or a list of [key, value] pairs (other items are
// skipped); empty for null or anything else.
nlohmann::json IndexEntries(const nlohmann::json& result);

// An object's id in the engine: "<resource full name>|<namespace>|<name>"
// (a resource's full name has no "|").
std::string ObjectId(const std::string& resource_full_name,
                     const cache::ObjectKey& key);
// The namespace and name an id holds.
cache::ObjectKey KeyOfObjectId(const std::string& id);

class Indices {
 public:
  using Id = std::string;

  // The object's entries in index `name` from an index handler's result:
  // [[key, value], ...]. No entries remove the object.
  void Set(const std::string& name, const Id& id, nlohmann::json entries);
  void Erase(const std::string& name, const Id& id);
  // The object is gone: out of every index.
  void Drop(const Id& id);

  // Computes the object's entries for every declarative index among
  // `handlers`.
  void IndexDeclaratively(const Id& id, const nlohmann::json& body,
                          const std::vector<const Handler*>& handlers);

  // An index as [[key, [values...]], ...] in key order; `declarative` ones
  // list object references ({"namespace", "name"}) as values.
  nlohmann::json Json(const std::string& name, bool declarative) const;
  // The same as text, cached until any index changes.
  const std::string& Text(const std::string& name, bool declarative);

  // The resource's initial listing is complete.
  void MarkListed(const std::string& resource_full_name) {
    listed_.insert(resource_full_name);
  }
  bool Listed(const std::string& resource_full_name) const {
    return listed_.count(resource_full_name) > 0;
  }
  // Counts the objects of a resource whose latest state is not indexed.
  void AddUnindexed(const std::string& resource_full_name, int delta) {
    unindexed_[resource_full_name] += delta;
  }
  // True once every index among `handlers` is filled: its resource listed
  // and each of its objects' latest states indexed.
  bool Ready(const std::vector<const Handler*>& handlers) const;

 private:
  // Index name -> object id -> its entries.
  std::map<std::string, std::map<Id, nlohmann::json>> indices_;
  struct Cached {
    uint64_t gen = 0;
    std::string text;
  };
  std::map<std::string, Cached> text_;
  uint64_t changes_ = 0;
  std::set<std::string> listed_;
  std::map<std::string, int> unindexed_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_INDICES_H_
