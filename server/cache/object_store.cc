#include "server/cache/object_store.h"

namespace herald::cache {

ObjectStore::Change ObjectStore::Upsert(CachedObject object) {
  auto fresh = std::make_shared<const CachedObject>(std::move(object));
  absl::MutexLock lock(&mu_);
  auto it = objects_.find(fresh->key);
  if (it == objects_.end()) {
    json_bytes_ += fresh->json.size();
    objects_.emplace(fresh->key, std::move(fresh));
    return Change::kAdded;
  }
  const bool same = it->second->uid == fresh->uid &&
                    it->second->resource_version == fresh->resource_version;
  json_bytes_ -= it->second->json.size();
  json_bytes_ += fresh->json.size();
  it->second = std::move(fresh);
  return same ? Change::kUnchanged : Change::kModified;
}

std::shared_ptr<const CachedObject> ObjectStore::Remove(const ObjectKey& key) {
  absl::MutexLock lock(&mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return nullptr;
  auto out = std::move(it->second);
  json_bytes_ -= out->json.size();
  objects_.erase(it);
  return out;
}

std::shared_ptr<const CachedObject> ObjectStore::Get(
    const ObjectKey& key) const {
  absl::MutexLock lock(&mu_);
  auto it = objects_.find(key);
  return it == objects_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const CachedObject>> ObjectStore::List(
    const std::string& ns, bool all_namespaces) const {
  std::vector<std::shared_ptr<const CachedObject>> out;
  absl::MutexLock lock(&mu_);
  if (all_namespaces) {
    out.reserve(objects_.size());
    for (const auto& [k, v] : objects_) out.push_back(v);
    return out;
  }
  for (auto it = objects_.lower_bound(ObjectKey{ns, ""});
       it != objects_.end() && it->first.ns == ns; ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::map<ObjectKey, std::string> ObjectStore::Versions(
    const std::string& ns, bool all_namespaces) const {
  std::map<ObjectKey, std::string> out;
  absl::MutexLock lock(&mu_);
  for (auto it = all_namespaces ? objects_.begin()
                                : objects_.lower_bound(ObjectKey{ns, ""});
       it != objects_.end() && (all_namespaces || it->first.ns == ns); ++it) {
    out.emplace(it->first, it->second->resource_version);
  }
  return out;
}

size_t ObjectStore::size() const {
  absl::MutexLock lock(&mu_);
  return objects_.size();
}

size_t ObjectStore::json_bytes() const {
  absl::MutexLock lock(&mu_);
  return json_bytes_;
}

}  // namespace herald::cache
