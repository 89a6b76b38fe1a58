#include "server/engine/inspection.h"

#include <algorithm>

#include "server/engine/essence.h"

namespace herald::engine {

namespace {

uint32_t ProcessesServing(const std::vector<StreamInfo>& streams,
                          const std::string& handler_id) {
  uint32_t n = 0;
  for (const auto& s : streams) {
    n += std::count(s.handler_ids.begin(), s.handler_ids.end(), handler_id) > 0;
  }
  return n;
}

}  // namespace

std::vector<HandlerSnapshot> SnapshotHandlers(
    const Registry& registry, const std::vector<StreamInfo>& streams,
    const std::map<std::string, HandlerStats>& stats,
    const std::map<std::string, LatencyHistogram>& latencies) {
  std::vector<HandlerSnapshot> out;
  for (const Handler* h : registry.All()) {
    HandlerSnapshot s;
    s.handler_id = h->id();
    s.resource_name = h->spec.resource;
    s.resource = h->resource;
    s.cause = h->cause();
    s.process_count = ProcessesServing(streams, h->id());
    if (auto it = stats.find(h->id()); it != stats.end()) s.stats = it->second;
    if (auto it = latencies.find(h->id());
        it != latencies.end() && it->second.count() > 0) {
      s.latency_p50 = it->second.Quantile(0.5);
      s.latency_p99 = it->second.Quantile(0.99);
    }
    out.push_back(std::move(s));
  }
  for (const auto& [id, p] : registry.pending()) {
    HandlerSnapshot s;
    s.handler_id = id;
    s.resource_name = p.spec.resource;
    s.cause = p.spec.cause;
    s.pending_reason = p.reason;
    s.process_count = ProcessesServing(streams, id);
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<ProgressSnapshot> SnapshotProgress(
    const Registry& registry, const AnnotationKeys& keys,
    const std::string& resource_full_name, const nlohmann::json& body) {
  std::vector<ProgressSnapshot> out;
  const nlohmann::json& ann = Resolve(body, {"metadata", "annotations"});
  if (!ann.is_object()) return out;
  for (const Handler* h : registry.ForResource(resource_full_name)) {
    for (const auto& k : keys.Keys(h->id(), body)) {
      auto it = ann.find(k);
      if (it == ann.end() || !it->is_string()) continue;
      auto record = DecodeProgress(it->get<std::string>());
      if (record.ok()) out.push_back({h->id(), *std::move(record)});
      break;
    }
  }
  return out;
}

IndexSnapshot SnapshotIndex(const nlohmann::json& index_json) {
  IndexSnapshot out;
  for (const auto& entry : index_json) {
    IndexSnapshot::Entry e;
    e.key = entry[0];
    for (const auto& value : entry[1]) e.values.push_back(value);
    out.entries.push_back(std::move(e));
  }
  return out;
}

ResourceSnapshot SnapshotResource(kube::ResourceWatch& watch) {
  ResourceSnapshot s;
  s.name = watch.name();
  s.state = watch.state();
  s.resource = watch.resource();
  s.synced = watch.synced();
  s.health = watch.health();
  s.scope = watch.scope().spec();
  s.object_count = watch.store().size();
  s.last_event = watch.last_event();
  return s;
}

}  // namespace herald::engine
