#include "server/kube/resource_watch.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/runtime/backoff.h"
#include "server/runtime/logging.h"

namespace herald::kube {

// Starts and stops per-namespace watchers as namespaces come and go.
class ResourceWatch::NamespaceTracker : public WatchHandler {
 public:
  explicit NamespaceTracker(ResourceWatch* owner) : owner_(owner) {}
  void OnEvent(const ResourceInfo&, const WatchEvent& e) override {
    const std::string& ns = e.object->key.name;
    if (!owner_->scope_.Matches(ns)) return;
    if (e.type == WatchEvent::Type::kDeleted) {
      owner_->StopNamespace(ns);
    } else {
      absl::MutexLock lock(&owner_->mu_);
      owner_->StartNamespace(ns);
    }
  }

 private:
  ResourceWatch* owner_;
};

ResourceWatch::ResourceWatch(ApiClient* api, Discovery* discovery,
                             std::string name, NamespaceScope scope,
                             WatchHandler* handler, WatchOptions options)
    : api_(api),
      discovery_(discovery),
      name_(std::move(name)),
      scope_(std::move(scope)),
      handler_(handler),
      options_(options) {}

ResourceWatch::~ResourceWatch() { Stop(); }

void ResourceWatch::Start() {
  thread_ = std::thread([this] { Run(); });
}

ResourceWatch::State ResourceWatch::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

ResourceInfo ResourceWatch::resource() const {
  absl::MutexLock lock(&mu_);
  return resource_;
}

bool ResourceWatch::synced() const {
  absl::MutexLock lock(&mu_);
  if (state_ != State::kWatching || listed_.empty()) return false;
  for (const auto& [ns, done] : listed_) {
    if (!done) return false;
  }
  return true;
}

void ResourceWatch::Forwarder::OnEvent(const ResourceInfo& r,
                                       const WatchEvent& e) {
  {
    absl::MutexLock lock(&owner_->mu_);
    owner_->last_event_ = owner_->api_->clock()->Now();
  }
  owner_->handler_->OnEvent(r, e);
}

absl::Time ResourceWatch::last_event() const {
  absl::MutexLock lock(&mu_);
  return last_event_;
}

ResourceWatch::Health ResourceWatch::Summarize(
    const std::map<std::string, WatcherStatus>& watchers,
    const WatcherStatus* namespaces, const WatcherStatus& resolving) {
  Health h;
  if (watchers.size() == 1) {
    h.resource_version = watchers.begin()->second.resource_version;
  } else {
    std::vector<std::string> parts;
    for (const auto& [ns, w] : watchers) {
      if (!w.resource_version.empty()) {
        parts.push_back(absl::StrCat(ns, "=", w.resource_version));
      }
    }
    h.resource_version = absl::StrJoin(parts, ",");
  }
  // Every failure source, named.
  std::vector<std::pair<std::string, const WatcherStatus*>> sources;
  sources.emplace_back("", &resolving);
  if (namespaces != nullptr) sources.emplace_back("namespaces", namespaces);
  for (const auto& [ns, w] : watchers) {
    sources.emplace_back(ns.empty() ? "" : absl::StrCat("namespace ", ns), &w);
  }
  const std::pair<std::string, const WatcherStatus*>* latest = nullptr;
  int backing_off = 0;
  for (const auto& source : sources) {
    const WatcherStatus& w = *source.second;
    if (w.last_error.empty()) continue;
    if (w.backing_off) ++backing_off;
    // One backing off wins over any that recovered; then the latest.
    if (latest == nullptr || (w.backing_off && !latest->second->backing_off) ||
        (w.backing_off == latest->second->backing_off &&
         w.last_error_time > latest->second->last_error_time)) {
      latest = &source;
    }
  }
  h.backing_off = backing_off > 0;
  if (latest != nullptr) {
    const WatcherStatus& w = *latest->second;
    h.last_error = absl::StrCat(
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", w.last_error_time,
                         absl::UTCTimeZone()),
        " ", latest->first, latest->first.empty() ? "" : ": ", w.last_error);
    if (backing_off > 1) {
      absl::StrAppend(&h.last_error, " (and ", backing_off - 1,
                      " more backing off)");
    }
  }
  return h;
}

ResourceWatch::Health ResourceWatch::health() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, WatcherStatus> watchers;
  for (const auto& [ns, r] : watchers_) watchers[ns] = r.watcher->status();
  WatcherStatus namespaces;
  if (namespace_watcher_) namespaces = namespace_watcher_->status();
  return Summarize(watchers, namespace_watcher_ ? &namespaces : nullptr,
                   resolving_);
}

void ResourceWatch::Forwarder::OnListed(const ResourceInfo& r,
                                        const std::string& ns) {
  {
    absl::MutexLock lock(&owner_->mu_);
    owner_->listed_[ns] = true;
  }
  owner_->handler_->OnListed(r, ns);
}

void ResourceWatch::StartNamespace(const std::string& ns) {
  if (stop_.HasBeenNotified() || watchers_.count(ns) > 0) return;
  HERALD_LOG(INFO, "kube") << resource_.FullName() << ": watching namespace "
                           << (ns.empty() ? "(all)" : ns);
  Running& r = watchers_[ns];
  listed_.emplace(ns, false);
  r.watcher = std::make_unique<Watcher>(api_, resource_, ns, &store_,
                                        &forwarder_, options_);
  Watcher* w = r.watcher.get();
  r.thread = std::thread([w] { w->Run(); });
}

void ResourceWatch::StopNamespace(const std::string& ns) {
  Running r;
  ResourceInfo resource;
  {
    absl::MutexLock lock(&mu_);
    auto it = watchers_.find(ns);
    if (it == watchers_.end()) return;
    r = std::move(it->second);
    watchers_.erase(it);
    listed_.erase(ns);
    resource = resource_;
  }
  r.watcher->Stop();
  if (r.thread.joinable()) r.thread.join();
  HERALD_LOG(INFO, "kube") << resource.FullName() << ": namespace " << ns
                           << " is gone; stopped watching it";
  // Whatever the watch did not see deleted goes now.
  for (const auto& obj : store_.List(ns, false)) {
    if (auto gone = store_.Remove(obj->key)) {
      handler_->OnEvent(resource,
                        WatchEvent{WatchEvent::Type::kDeleted, gone, true});
    }
  }
}

void ResourceWatch::Run() {
  runtime::Backoff backoff(options_.backoff);
  bool told_waiting = false;
  ResourceInfo resolved;
  while (!stop_.HasBeenNotified()) {
    auto r = discovery_->Resolve(name_);
    if (r.ok()) {
      resolved = *r;
      absl::MutexLock lock(&mu_);
      resolving_.backing_off = false;
      break;
    }
    {
      // Waiting for a resource to appear is no failure; the rest is.
      absl::MutexLock lock(&mu_);
      resolving_.backing_off = !absl::IsNotFound(r.status());
      if (resolving_.backing_off) {
        resolving_.last_error = absl::StrCat(
            "resolving '", name_, "' failed: ", ExplainFailure(r.status()));
        resolving_.last_error_time = api_->clock()->Now();
      }
    }
    if (absl::IsNotFound(r.status())) {
      {
        absl::MutexLock lock(&mu_);
        state_ = State::kWaitingForResource;
      }
      if (!told_waiting) {
        HERALD_LOG(WARNING, "kube")
            << r.status().message() << "; waiting for it to appear";
        told_waiting = true;
      }
    } else if (absl::IsInvalidArgument(r.status())) {
      HERALD_LOG(ERROR, "kube") << r.status().message();
    } else if (HttpStatusOf(r.status()) == 401 ||
               HttpStatusOf(r.status()) == 403) {
      HERALD_LOG(ERROR, "kube")
          << "not ready: cannot resolve '" << name_
          << "': " << ExplainFailure(r.status()) << "; retrying";
    } else {
      HERALD_LOG(WARNING, "kube")
          << "not ready: cannot reach the API server to resolve '" << name_
          << "': " << r.status().message();
    }
    if (!api_->clock()->SleepFor(backoff.Next(), &stop_)) return;
  }
  if (stop_.HasBeenNotified()) return;
  HERALD_LOG(INFO, "kube") << "'" << name_ << "' is " << resolved.FullName()
                           << (resolved.namespaced ? " (namespaced)"
                                                   : " (cluster-scoped)");
  {
    absl::MutexLock lock(&mu_);
    if (stop_.HasBeenNotified()) return;
    resource_ = resolved;
    state_ = State::kWatching;
    if (!resolved.namespaced || scope_.cluster_wide()) {
      StartNamespace("");
      return;
    }
    if (scope_.fixed()) {
      for (const auto& ns : scope_.names()) StartNamespace(ns);
      return;
    }
  }
  // Globs or negations: follow the namespaces.
  ResourceInfo namespaces;
  namespaces.version = "v1";
  namespaces.plural = "namespaces";
  namespaces.kind = "Namespace";
  namespaces.namespaced = false;
  Watcher* namespace_watcher;
  {
    absl::MutexLock lock(&mu_);
    if (stop_.HasBeenNotified()) return;
    tracker_ = std::make_unique<NamespaceTracker>(this);
    namespace_store_ = std::make_unique<cache::ObjectStore>();
    namespace_watcher_ = std::make_unique<Watcher>(
        api_, namespaces, "", namespace_store_.get(), tracker_.get(), options_);
    namespace_watcher = namespace_watcher_.get();
  }
  namespace_watcher->Run();
}

void ResourceWatch::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  std::map<std::string, Running> running;
  {
    // StartNamespace checks stop_ under mu_, so no watcher starts after this.
    absl::MutexLock lock(&mu_);
    running.swap(watchers_);
    state_ = State::kStopped;
    if (namespace_watcher_) namespace_watcher_->Stop();
  }
  if (thread_.joinable()) thread_.join();
  for (auto& [ns, r] : running) r.watcher->Stop();
  for (auto& [ns, r] : running) {
    if (r.thread.joinable()) r.thread.join();
  }
}

}  // namespace herald::kube
