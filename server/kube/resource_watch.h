// Watches one resource, as configured by name and namespace scope, for as
// long as it runs: waits for the resource to exist (a CRD may be applied
// after start), then keeps one Watcher per namespace in scope, starting and
// stopping them as matching namespaces appear and go.
#ifndef HERALD_SERVER_KUBE_RESOURCE_WATCH_H_
#define HERALD_SERVER_KUBE_RESOURCE_WATCH_H_

#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "server/cache/object_store.h"
#include "server/kube/discovery.h"
#include "server/kube/namespace_scope.h"
#include "server/kube/watcher.h"

namespace herald::kube {

class ResourceWatch {
 public:
  enum class State { kResolving, kWaitingForResource, kWatching, kStopped };

  // How the watch is doing, over all its watchers, for inspection.
  struct Health {
    // True while resolving the resource fails, or while any watcher is
    // backing off after a failure.
    bool backing_off = false;
    // The last resourceVersion seen: with one watcher, its own; with
    // several, "ns=rv" per namespace, comma-separated, in namespace order.
    std::string resource_version;
    // The failure that matters, named: of a watcher backing off (the latest
    // one; how many other namespaces back off too), else the latest failure
    // of any (kept after recovery); "" if none. Starts with the time
    // ("2026-11-24T15:22:37Z namespace ns1: listing failed: ...").
    std::string last_error;
  };
  // Sums up the statuses of the watchers (by namespace, "" for
  // cluster-wide), of the watch on namespaces that a glob scope keeps
  // (nullptr if none; its resourceVersion is not the resource's) and of the
  // resolution of the resource.
  static Health Summarize(const std::map<std::string, WatcherStatus>& watchers,
                          const WatcherStatus* namespaces,
                          const WatcherStatus& resolving);

  ResourceWatch(ApiClient* api, Discovery* discovery, std::string name,
                NamespaceScope scope, WatchHandler* handler,
                WatchOptions options = WatchOptions());
  ~ResourceWatch();

  // Starts the watch on its own thread.
  void Start();
  // Stops every watcher and joins the threads. Idempotent.
  void Stop();

  State state() const;
  // The resolved resource (valid once watching).
  ResourceInfo resource() const;
  cache::ObjectStore& store() { return store_; }
  // True once every namespace in scope has been listed at least once.
  bool synced() const;
  const std::string& name() const { return name_; }
  const NamespaceScope& scope() const { return scope_; }
  // When the last event arrived (InfinitePast before any).
  absl::Time last_event() const;
  // Thread-safe.
  Health health() const;

 private:
  class NamespaceTracker;

  void Run();
  void StartNamespace(const std::string& ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StopNamespace(const std::string& ns);

  // Forwards events and counts listings.
  class Forwarder : public WatchHandler {
   public:
    explicit Forwarder(ResourceWatch* owner) : owner_(owner) {}
    void OnEvent(const ResourceInfo& r, const WatchEvent& e) override;
    void OnListed(const ResourceInfo& r, const std::string& ns) override;

   private:
    ResourceWatch* owner_;
  };

  struct Running {
    std::unique_ptr<Watcher> watcher;
    std::thread thread;
  };

  ApiClient* api_;
  Discovery* discovery_;
  const std::string name_;
  const NamespaceScope scope_;
  WatchHandler* handler_;
  const WatchOptions options_;
  Forwarder forwarder_{this};
  cache::ObjectStore store_;

  absl::Notification stop_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kResolving;
  ResourceInfo resource_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Running> watchers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, bool> listed_ ABSL_GUARDED_BY(mu_);
  // Resolution failures, as a watcher's are kept.
  WatcherStatus resolving_ ABSL_GUARDED_BY(mu_);
  absl::Time last_event_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // For scopes with globs: the watch on namespaces.
  std::unique_ptr<NamespaceTracker> tracker_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<cache::ObjectStore> namespace_store_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Watcher> namespace_watcher_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::kube

#endif  // HERALD_SERVER_KUBE_RESOURCE_WATCH_H_
