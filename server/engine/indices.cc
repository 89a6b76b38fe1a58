#include "server/engine/indices.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/engine/causes.h"
#include "server/engine/essence.h"

namespace herald::engine {

using nlohmann::json;

std::string ObjectId(const std::string& resource_full_name,
                     const cache::ObjectKey& key) {
  return absl::StrCat(resource_full_name, "|", key.ns, "|", key.name);
}

cache::ObjectKey KeyOfObjectId(const std::string& id) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(id, absl::MaxSplits('|', 2));
  cache::ObjectKey key;
  if (parts.size() == 3) {
    key.ns = std::string(parts[1]);
    key.name = std::string(parts[2]);
  }
  return key;
}

json DeclarativeKey(const Handler& h, const json& body) {
  json key = nullptr;
  if (h.spec.index && !h.spec.index->label.empty()) {
    const json& labels = Resolve(MetaOf(body), {"labels"});
    if (labels.is_object()) {
      auto l = labels.find(h.spec.index->label);
      if (l != labels.end()) key = *l;
    }
  } else {
    key = Resolve(body, h.index_field);
  }
  if (key.is_null() || !MatchesMeta(h, body)) return nullptr;
  return key;
}

json IndexEntries(const json& r) {
  json entries = json::array();
  if (r.is_object()) {
    for (auto& [k, v] : r.items()) entries.push_back({k, v});
  } else if (r.is_array()) {
    for (auto& kv : r) {
      if (kv.is_array() && kv.size() == 2) entries.push_back(kv);
    }
  }
  return entries;
}

void Indices::Set(const std::string& name, const Id& id, json entries) {
  if (entries.empty()) {
    Erase(name, id);
    return;
  }
  indices_[name][id] = std::move(entries);
  ++changes_;
}

void Indices::Erase(const std::string& name, const Id& id) {
  indices_[name].erase(id);
  ++changes_;
}

void Indices::Drop(const Id& id) {
  for (auto& [name, entries] : indices_) changes_ += entries.erase(id);
}

void Indices::IndexDeclaratively(const Id& id, const json& body,
                                 const std::vector<const Handler*>& handlers) {
  for (const Handler* h : handlers) {
    if (h->cause() != Cause::kIndex || !h->declarative()) continue;
    // Only the key: Json() adds the object's reference.
    json key = DeclarativeKey(*h, body);
    if (key.is_null()) {
      Erase(h->id(), id);
    } else {
      indices_[h->id()][id] = std::move(key);
      ++changes_;
    }
  }
}

json Indices::Json(const std::string& name, bool declarative) const {
  // Key (as JSON text) -> [key, [values...]], in key order.
  std::map<std::string, json> grouped;
  auto it = indices_.find(name);
  if (it != indices_.end()) {
    for (const auto& [id, entries] : it->second) {
      if (declarative) {
        // Only the key is kept; the value is the object's reference.
        const cache::ObjectKey key = KeyOfObjectId(id);
        json ref = {{"name", key.name}};
        if (!key.ns.empty()) ref["namespace"] = key.ns;
        json& slot = grouped[entries.dump()];
        if (slot.is_null()) slot = json::array({entries, json::array()});
        slot[1].push_back(std::move(ref));
        continue;
      }
      for (const auto& kv : entries) {
        json& slot = grouped[kv[0].dump()];
        if (slot.is_null()) slot = json::array({kv[0], json::array()});
        slot[1].push_back(kv[1]);
      }
    }
  }
  json out = json::array();
  for (auto& [k, slot] : grouped) out.push_back(std::move(slot));
  return out;
}

const std::string& Indices::Text(const std::string& name, bool declarative) {
  // Many deliveries carry the same index between changes: serialized once
  // per change of any index, not once per delivery.
  Cached& c = text_[name];
  if (c.gen != changes_ || c.text.empty()) {
    c.text = Json(name, declarative).dump();
    c.gen = changes_;
  }
  return c.text;
}

bool Indices::Ready(const std::vector<const Handler*>& handlers) const {
  for (const Handler* h : handlers) {
    if (h->cause() != Cause::kIndex) continue;
    const std::string name = h->resource.FullName();
    if (!listed_.count(name)) return false;
    auto it = unindexed_.find(name);
    if (it != unindexed_.end() && it->second > 0) return false;
  }
  return true;
}

}  // namespace herald::engine
