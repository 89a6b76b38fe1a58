// The engine's answers to inspection (see inspection.h): queries that copy
// loop-owned state on the loop, and the watch list read from any thread.
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/engine/engine.h"

namespace herald::engine {

std::vector<kube::ResourceWatch*> Engine::WatchList() {
  absl::MutexLock lock(&watches_mu_);
  std::vector<kube::ResourceWatch*> out;
  for (auto& w : watches_) out.push_back(w.get());
  return out;
}

absl::StatusOr<std::vector<kube::ResourceWatch*>> Engine::InspectedWatchList() {
  absl::MutexLock lock(&watches_mu_);
  if (watches_closed_) return absl::UnavailableError("the sidecar is stopping");
  std::vector<kube::ResourceWatch*> out;
  for (auto& w : watches_) out.push_back(w.get());
  return out;
}

template <typename T>
absl::StatusOr<T> Engine::Query(std::function<T()> fn) {
  std::optional<T> out;
  if (!RunOnLoop([&] { out = fn(); })) {
    return absl::UnavailableError("the sidecar is stopping");
  }
  return *std::move(out);
}

absl::StatusOr<StatusSnapshot> Engine::Overview() {
  return Query<StatusSnapshot>([this] {
    StatusSnapshot s;
    s.version = options_.version;
    s.started = started_;
    s.ready = ReadyOnLoop();
    s.api_server = api_server_;
    s.annotation_prefix = options_.engine.prefix;
    s.leadership = Leadership();
    return s;
  });
}

absl::StatusOr<std::vector<ResourceSnapshot>> Engine::Resources() {
  auto watches = InspectedWatchList();
  if (!watches.ok()) return watches.status();
  std::vector<ResourceSnapshot> out;
  out.reserve(watches->size());
  for (auto* w : *watches) out.push_back(SnapshotResource(*w));
  return out;
}

absl::StatusOr<std::vector<WatchedCache>> Engine::Caches() {
  auto watches = InspectedWatchList();
  if (!watches.ok()) return watches.status();
  std::vector<WatchedCache> out;
  for (auto* w : *watches) {
    if (w->state() != kube::ResourceWatch::State::kWatching) continue;
    out.push_back({w->name(), w->resource(), &w->store()});
  }
  return out;
}

absl::StatusOr<std::vector<HandlerSnapshot>> Engine::Handlers() {
  return Query<std::vector<HandlerSnapshot>>([this] {
    return SnapshotHandlers(registry_, dispatcher_.Streams(),
                            processor_->stats(), dispatcher_.latencies());
  });
}

absl::StatusOr<std::vector<ProcessSnapshot>> Engine::Processes() {
  return Query<std::vector<ProcessSnapshot>>(
      [this] { return dispatcher_.Streams(); });
}

absl::StatusOr<std::vector<QueueSnapshot>> Engine::Queues() {
  return Query<std::vector<QueueSnapshot>>(
      [this] { return processor_->Queues(); });
}

absl::StatusOr<std::vector<TimerSnapshot>> Engine::Timers() {
  return Query<std::vector<TimerSnapshot>>(
      [this] { return processor_->Timers(); });
}

absl::StatusOr<std::vector<DaemonSnapshot>> Engine::Daemons() {
  return Query<std::vector<DaemonSnapshot>>(
      [this] { return processor_->Daemons(); });
}

absl::StatusOr<IndexSnapshot> Engine::Index(const std::string& name) {
  absl::StatusOr<std::optional<IndexSnapshot>> index =
      Query<std::optional<IndexSnapshot>>(
          [this, &name]() -> std::optional<IndexSnapshot> {
            const Handler* h = registry_.Find(name);
            if (h == nullptr || h->cause() != Cause::kIndex) {
              return std::nullopt;
            }
            return SnapshotIndex(processor_->IndexJson(name));
          });
  if (!index.ok()) return index.status();
  if (!index->has_value()) {
    return absl::NotFoundError(absl::StrCat("no index named '", name, "'"));
  }
  return **std::move(index);
}

absl::StatusOr<ObjectStateSnapshot> Engine::ObjectState(
    const kube::ResourceInfo& resource, const cache::ObjectKey& key,
    const nlohmann::json& body) {
  return Query<ObjectStateSnapshot>([&] {
    ObjectStateSnapshot s;
    const std::string name = resource.FullName();
    if (const nlohmann::json* memo = processor_->MemoOf(name, key)) {
      s.memo = *memo;
    }
    s.progress = SnapshotProgress(registry_, processor_->keys(), name, body);
    return s;
  });
}

}  // namespace herald::engine
