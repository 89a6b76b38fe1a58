// Keeps one resource in one namespace (or all namespaces) in sync with the
// API server: a paged list, then a watch from the list's resourceVersion,
// reconnecting from the last resourceVersion seen. A 410 Gone (as an HTTP
// status or as an ERROR event) leads to a relist that reports only
// differences.
#ifndef HERALD_SERVER_KUBE_WATCHER_H_
#define HERALD_SERVER_KUBE_WATCHER_H_

#include <memory>
#include <string>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/cache/object_store.h"
#include "server/kube/api_client.h"
#include "server/kube/discovery.h"
#include "server/kube/ingest.h"
#include "server/metrics/metrics.h"
#include "server/runtime/backoff.h"

namespace herald::kube {

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted };
  Type type;
  // The object as cached; for kDeleted, its last state.
  std::shared_ptr<const cache::CachedObject> object;
  // True for events produced by a listing (the initial one or a relist).
  bool from_listing = false;
};

const char* WatchEventTypeName(WatchEvent::Type type);

// Receives what a Watcher sees. Called on the watcher's thread; must not
// block for long.
class WatchHandler {
 public:
  virtual ~WatchHandler() = default;
  virtual void OnEvent(const ResourceInfo& resource,
                       const WatchEvent& event) = 0;
  // A listing (initial or relist) is complete: the store holds every object.
  virtual void OnListed(const ResourceInfo& resource, const std::string& ns) {}
};

struct WatchOptions {
  int page_size = 500;
  // Asked of the server per watch request; each request adds up to 100%
  // random jitter so that watches do not reconnect in lockstep.
  absl::Duration server_timeout = absl::Minutes(5);
  // A watch that delivers nothing (no event, no bookmark) for this long is
  // reconnected.
  absl::Duration idle_timeout = absl::Seconds(70);
  bool strip_managed_fields = true;
  runtime::Backoff::Options backoff;
  // A 401 or 403 is logged at most once per this period per watcher.
  absl::Duration forbidden_log_period = absl::Minutes(5);
  // Counts, by the resource's full name, every watch request reopened after
  // one ended (server timeout, idle reconnect, error, 410 Gone); may be null.
  metrics::Family<metrics::Counter>* restarts = nullptr;
};

// What a Watcher has seen, for inspection.
struct WatcherStatus {
  // The last resourceVersion seen: of a listing, an event or a bookmark.
  std::string resource_version;
  int list_count = 0;
  // True from a failed list or watch request until a listing completes or a
  // watch request is answered 200 (the watcher waits between attempts, with
  // backoff, meanwhile).
  bool backing_off = false;
  // The last failure ("listing failed: ..." or "watching failed: ...") and
  // when it happened; empty and InfinitePast before any. Kept after recovery.
  std::string last_error;
  absl::Time last_error_time = absl::InfinitePast();
};

// Lists and watches until stopped. Run() blocks; Stop() may be called from
// any thread.
class Watcher {
 public:
  Watcher(ApiClient* api, ResourceInfo resource, std::string ns,
          cache::ObjectStore* store, WatchHandler* handler,
          WatchOptions options = WatchOptions());

  void Run();
  void Stop();

  // For inspection and tests.
  std::string resource_version() const;
  int list_count() const;
  // Thread-safe.
  WatcherStatus status() const;

 private:
  absl::Status ListAndSync();
  // One watch request. OK when it ended normally (server timeout or idle
  // reconnect); OutOfRange for 410 Gone.
  absl::Status WatchOnce();
  absl::Status OpenStream(const HttpRequest& request, const DataCallback& cb,
                          HttpResponse* response);
  bool Sleep(absl::Duration d);
  void Emit(WatchEvent::Type type, std::shared_ptr<const cache::CachedObject> o,
            bool from_listing);
  // Logs a failed request and records it (backing off from now on).
  void Failed(const absl::Status& st, absl::string_view what);
  // A request succeeded: no longer backing off.
  void Recovered();

  ApiClient* api_;
  const ResourceInfo resource_;
  const std::string ns_;
  cache::ObjectStore* store_;
  WatchHandler* handler_;
  const WatchOptions options_;
  const std::string label_;
  // This watcher's child of WatchOptions::restarts, or null.
  metrics::Counter* const restarts_;

  absl::Notification stop_;
  mutable absl::Mutex mu_;
  StreamCanceller* canceller_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::string rv_ ABSL_GUARDED_BY(mu_);
  int list_count_ ABSL_GUARDED_BY(mu_) = 0;
  bool backing_off_ ABSL_GUARDED_BY(mu_) = false;
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  absl::Time last_error_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time last_forbidden_log_ = absl::InfinitePast();
  // Seeded randomly per watcher: the jitter of its server-side timeout.
  absl::BitGen gen_;
};

}  // namespace herald::kube

#endif  // HERALD_SERVER_KUBE_WATCHER_H_
