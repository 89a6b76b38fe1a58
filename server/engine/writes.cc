#include "server/engine/writes.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/engine/causes.h"
#include "server/engine/essence.h"

namespace herald::engine {

using nlohmann::json;

WritePlan PlanCycleWrites(const json& body, const AnnotationKeys& keys,
                          const CycleResult& cycle, json patch,
                          json status_patch, size_t max_diffbase_bytes) {
  WritePlan plan;
  plan.all_done = true;
  for (const auto& [hid, rec] : *cycle.records) plan.all_done &= rec.finished();
  json annotations = json::object();
  const json& current = Resolve(MetaOf(body), {"annotations"});
  auto has = [&](const std::string& key) {
    return current.is_object() && current.contains(key);
  };
  auto store = [&](const std::string& hid, const ProgressRecord& rec) {
    for (const auto& key : keys.Keys(hid, body)) {
      if (plan.all_done) {
        if (has(key)) annotations[key] = nullptr;
      } else {
        annotations[key] = EncodeProgress(rec);
      }
    }
  };
  for (const auto& [hid, rec] : *cycle.records) store(hid, rec);
  for (const auto& [hid, rec] : *cycle.child_records) store(hid, rec);
  if (plan.all_done && cycle.cause != Cause::kDelete) {
    std::string base = cycle.new_essence->dump() + "\n";
    auto set = [&](const std::string& name, const json& value) {
      for (const auto& key : keys.Keys(name, body)) {
        const json cur = has(key) ? current[key] : json(nullptr);
        if (cur != value) annotations[key] = value;
      }
    };
    if (base.size() > max_diffbase_bytes) {
      set(kDigestKey, Digest(base));
      set(kDiffBaseKey, nullptr);
      plan.large_base = WritePlan::LargeBase::kSet;
      plan.digested_bytes = base.size();
    } else {
      set(kDiffBaseKey, base);
      set(kDigestKey, nullptr);
      plan.large_base = WritePlan::LargeBase::kClear;
    }
  }
  const std::string marker = keys.MarkerKey();
  if (!annotations.empty() && !marker.empty() && !has(marker)) {
    annotations[marker] = "yes";
  }
  // Assigned key by key: nulls must reach the server to delete keys.
  for (const auto& [k, v] : annotations.items()) {
    patch["metadata"]["annotations"][k] = v;
  }
  plan.patch = std::move(patch);
  plan.status_patch = std::move(status_patch);
  plan.remove_finalizer = plan.all_done && cycle.cause == Cause::kDelete;
  return plan;
}

void FoldStatus(bool has_status_subresource, json& patch, json& status_patch) {
  if (status_patch.empty() || has_status_subresource) return;
  for (const auto& [k, v] : status_patch.items()) patch["status"][k] = v;
  status_patch = json::object();
}

absl::optional<json> FinalizerPatch(const json& body,
                                    const std::string& finalizer, bool add,
                                    const std::string& rv) {
  json ops = json::array();
  ops.push_back(
      {{"op", "test"}, {"path", "/metadata/resourceVersion"}, {"value", rv}});
  const json& f = Resolve(MetaOf(body), {"finalizers"});
  if (add) {
    if (f.is_array()) {
      ops.push_back({{"op", "add"},
                     {"path", "/metadata/finalizers/-"},
                     {"value", finalizer}});
    } else {
      ops.push_back({{"op", "add"},
                     {"path", "/metadata/finalizers"},
                     {"value", json::array({finalizer})}});
    }
    return ops;
  }
  size_t index = 0;
  for (; f.is_array() && index < f.size(); ++index) {
    if (f[index] == finalizer) break;
  }
  if (!f.is_array() || index == f.size()) return absl::nullopt;
  const std::string path = absl::StrCat("/metadata/finalizers/", index);
  ops.push_back({{"op", "test"}, {"path", path}, {"value", finalizer}});
  ops.push_back({{"op", "remove"}, {"path", path}});
  return ops;
}

absl::Time EarliestDelay(const std::map<std::string, ProgressRecord>& records) {
  absl::Time wake = absl::InfiniteFuture();
  for (const auto& [hid, rec] : records) {
    if (!rec.finished() && rec.delayed) wake = std::min(wake, *rec.delayed);
  }
  return wake;
}

}  // namespace herald::engine
