#include "server/kube/watcher.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "server/kube/ingest.h"
#include "server/kube/stream_parser.h"
#include "server/runtime/logging.h"

namespace herald::kube {
namespace {

using nlohmann::json;

std::string UrlEncode(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// The backoff's next delay, or the server's Retry-After when it asked for one.
absl::Duration RetryDelayFor(const absl::Status& st,
                             runtime::Backoff& backoff) {
  absl::Duration d = backoff.Next();
  if (auto ra = RetryAfterOf(st)) d = *ra;
  return d;
}

}  // namespace

const char* WatchEventTypeName(WatchEvent::Type type) {
  switch (type) {
    case WatchEvent::Type::kAdded:
      return "ADDED";
    case WatchEvent::Type::kModified:
      return "MODIFIED";
    case WatchEvent::Type::kDeleted:
      return "DELETED";
  }
  return "?";
}

Watcher::Watcher(ApiClient* api, ResourceInfo resource, std::string ns,
                 cache::ObjectStore* store, WatchHandler* handler,
                 WatchOptions options)
    : api_(api),
      resource_(std::move(resource)),
      ns_(resource_.namespaced ? std::move(ns) : ""),
      store_(store),
      handler_(handler),
      options_(options),
      label_(ns_.empty() ? resource_.FullName()
                         : absl::StrCat(resource_.FullName(), " in ", ns_)),
      restarts_(options_.restarts == nullptr
                    ? nullptr
                    : options_.restarts->With({resource_.FullName()})) {}

std::string Watcher::resource_version() const {
  absl::MutexLock lock(&mu_);
  return rv_;
}

int Watcher::list_count() const {
  absl::MutexLock lock(&mu_);
  return list_count_;
}

WatcherStatus Watcher::status() const {
  absl::MutexLock lock(&mu_);
  WatcherStatus s;
  s.resource_version = rv_;
  s.list_count = list_count_;
  s.backing_off = backing_off_;
  s.last_error = last_error_;
  s.last_error_time = last_error_time_;
  return s;
}

void Watcher::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  absl::MutexLock lock(&mu_);
  if (canceller_ != nullptr) canceller_->Cancel();
}

bool Watcher::Sleep(absl::Duration d) {
  return api_->clock()->SleepFor(d, &stop_);
}

void Watcher::Emit(WatchEvent::Type type,
                   std::shared_ptr<const cache::CachedObject> o,
                   bool from_listing) {
  WatchEvent e{type, std::move(o), from_listing};
  handler_->OnEvent(resource_, e);
}

void Watcher::Recovered() {
  absl::MutexLock lock(&mu_);
  backing_off_ = false;
}

void Watcher::Failed(const absl::Status& st, absl::string_view what) {
  {
    absl::MutexLock lock(&mu_);
    backing_off_ = true;
    last_error_ = absl::StrCat(what, " failed: ", ExplainFailure(st));
    last_error_time_ = api_->clock()->Now();
  }
  const int http = HttpStatusOf(st);
  if (http == 401 || http == 403) {
    absl::Time now = api_->clock()->Now();
    if (now - last_forbidden_log_ < options_.forbidden_log_period) return;
    last_forbidden_log_ = now;
    HERALD_LOG(WARNING, "kube")
        << label_ << ": " << what << " failed; retrying quietly (next "
        << "report in " << absl::FormatDuration(options_.forbidden_log_period)
        << "): " << ExplainFailure(st);
    return;
  }
  HERALD_LOG(WARNING, "kube") << label_ << ": " << what << " failed: " << st;
}

absl::Status Watcher::OpenStream(const HttpRequest& request,
                                 const DataCallback& cb,
                                 HttpResponse* response) {
  StreamCanceller canceller;
  {
    absl::MutexLock lock(&mu_);
    if (stop_.HasBeenNotified()) return absl::CancelledError("stopped");
    canceller_ = &canceller;
  }
  auto result =
      api_->http().Stream(request, options_.idle_timeout, cb, &canceller);
  {
    absl::MutexLock lock(&mu_);
    canceller_ = nullptr;
  }
  if (!result.ok()) return result.status();
  *response = std::move(*result);
  return absl::OkStatus();
}

absl::Status Watcher::ListAndSync() {
  const bool all = ns_.empty();
  std::map<cache::ObjectKey, std::string> known = store_->Versions(ns_, all);
  std::set<cache::ObjectKey> seen;
  std::string cont;
  std::string list_rv;
  absl::Status item_error;
  for (;;) {
    HttpRequest req;
    req.target = absl::StrCat(resource_.CollectionPath(ns_),
                              "?limit=", options_.page_size);
    if (!cont.empty())
      absl::StrAppend(&req.target, "&continue=", UrlEncode(cont));
    ListItemSplitter splitter([&](absl::string_view item) {
      auto obj = IngestObject(item, options_.strip_managed_fields);
      if (!obj.ok()) {
        item_error = obj.status();
        return true;  // Skip the bad item; keep the rest.
      }
      cache::ObjectKey key = obj->key;
      seen.insert(key);
      auto change = store_->Upsert(std::move(*obj));
      if (change == cache::ObjectStore::Change::kAdded) {
        Emit(WatchEvent::Type::kAdded, store_->Get(key), true);
      } else if (change == cache::ObjectStore::Change::kModified) {
        Emit(WatchEvent::Type::kModified, store_->Get(key), true);
      }
      return true;
    });
    HttpResponse resp;
    absl::Status st = OpenStream(
        req, [&](absl::string_view chunk) { return splitter.Feed(chunk); },
        &resp);
    if (!st.ok()) return st;
    if (resp.status == 410 && !cont.empty()) {
      // The continue token expired mid-listing: list again from the start.
      HERALD_LOG(INFO, "kube") << label_ << ": list continuation expired; "
                               << "listing again";
      cont.clear();
      continue;
    }
    if (resp.status != 200) {
      return StatusFromResponse(resp, absl::StrCat("list ", label_));
    }
    absl::Status done = splitter.Finish();
    if (!done.ok()) {
      return absl::UnavailableError(
          absl::StrCat("list ", label_, ": ", done.message()));
    }
    json env = json::parse(splitter.envelope(), nullptr, false);
    if (!env.is_object()) {
      return absl::UnavailableError(
          absl::StrCat("list ", label_, ": bad list"));
    }
    const json& meta = env.contains("metadata") ? env["metadata"] : json();
    if (meta.is_object()) {
      list_rv = Str(meta, "resourceVersion");
      cont = Str(meta, "continue");
    } else {
      cont.clear();
    }
    if (cont.empty()) break;
  }
  if (!item_error.ok()) {
    HERALD_LOG(WARNING, "kube")
        << label_ << ": skipped a listed object: " << item_error.message();
  }
  // What the store knew and the listing no longer has was deleted meanwhile.
  for (const auto& [key, rv] : known) {
    if (seen.count(key) > 0) continue;
    if (auto gone = store_->Remove(key)) {
      Emit(WatchEvent::Type::kDeleted, std::move(gone), true);
    }
  }
  {
    absl::MutexLock lock(&mu_);
    rv_ = list_rv;
    ++list_count_;
    backing_off_ = false;
  }
  handler_->OnListed(resource_, ns_);
  return absl::OkStatus();
}

absl::Status Watcher::WatchOnce() {
  // Up to 100% jitter on the server-side timeout.
  const int64_t base = absl::ToInt64Seconds(options_.server_timeout);
  const int64_t timeout =
      base + absl::Uniform<int64_t>(absl::IntervalClosed, gen_, 0, base);
  HttpRequest req;
  req.target =
      absl::StrCat(resource_.CollectionPath(ns_),
                   "?watch=1&allowWatchBookmarks=true&resourceVersion=",
                   UrlEncode(resource_version()), "&timeoutSeconds=", timeout);
  absl::Status stream_error;
  // Applies an ADDED, MODIFIED or DELETED event's object.
  auto apply = [&](const std::string& type,
                   absl::StatusOr<cache::CachedObject> obj) {
    if (!obj.ok()) {
      HERALD_LOG(WARNING, "kube") << label_ << ": skipped a " << type
                                  << " event: " << obj.status().message();
      return;
    }
    const std::string rv = obj->resource_version;
    if (type == "DELETED") {
      cache::ObjectKey key = obj->key;
      store_->Remove(key);
      Emit(WatchEvent::Type::kDeleted,
           std::make_shared<const cache::CachedObject>(std::move(*obj)), false);
    } else {
      cache::ObjectKey key = obj->key;
      auto change = store_->Upsert(std::move(*obj));
      if (change != cache::ObjectStore::Change::kUnchanged) {
        Emit(change == cache::ObjectStore::Change::kAdded
                 ? WatchEvent::Type::kAdded
                 : WatchEvent::Type::kModified,
             store_->Get(key), false);
      }
    }
    absl::MutexLock lock(&mu_);
    if (!rv.empty()) rv_ = rv;
  };
  std::string fast_type;
  absl::string_view fast_object;
  LineSplitter lines([&](absl::string_view line) {
    // The common case without a DOM: the type and the object's text.
    if (SplitWatchEvent(line, &fast_type, &fast_object) &&
        (fast_type == "ADDED" || fast_type == "MODIFIED" ||
         fast_type == "DELETED")) {
      apply(fast_type,
            IngestObject(fast_object, options_.strip_managed_fields));
      return true;
    }
    json ev = json::parse(line.begin(), line.end(), nullptr, false);
    if (!ev.is_object()) {
      stream_error = absl::UnavailableError("watch event is not JSON");
      return false;
    }
    const std::string type = Str(ev, "type");
    auto obj_it = ev.find("object");
    if (obj_it == ev.end()) {
      stream_error = absl::UnavailableError("watch event has no object");
      return false;
    }
    if (type == "BOOKMARK") {
      if (obj_it->contains("metadata")) {
        std::string rv = Str((*obj_it)["metadata"], "resourceVersion");
        absl::MutexLock lock(&mu_);
        if (!rv.empty()) rv_ = rv;
      }
      return true;
    }
    if (type == "ERROR") {
      const int code = obj_it->value("code", 0);
      const std::string message = Str(*obj_it, "message");
      if (code == 410) {
        stream_error =
            absl::OutOfRangeError(absl::StrCat("410 Gone: ", message));
      } else {
        stream_error = absl::UnavailableError(
            absl::StrCat("watch error ", code, ": ", message));
      }
      return false;
    }
    if (type == "ADDED" || type == "MODIFIED" || type == "DELETED") {
      apply(type, IngestParsed(*obj_it, options_.strip_managed_fields));
    } else {
      HERALD_LOG(WARNING, "kube")
          << label_ << ": unknown watch event type '" << type << "'";
    }
    return true;
  });
  HttpResponse resp;
  bool answered = false;
  absl::Status st = OpenStream(
      req,
      [&](absl::string_view chunk) {
        // The first call (an empty chunk once a 2xx header has arrived)
        // means the watch request succeeded.
        if (!answered) {
          answered = true;
          Recovered();
        }
        return lines.Feed(chunk);
      },
      &resp);
  if (!stream_error.ok()) return stream_error;
  if (absl::IsDeadlineExceeded(st)) {
    HERALD_LOG(INFO, "kube")
        << label_ << ": watch idle for "
        << absl::FormatDuration(options_.idle_timeout) << "; reconnecting";
    return absl::OkStatus();
  }
  if (!st.ok()) return st;
  if (resp.status == 410) {
    return absl::OutOfRangeError("410 Gone: " + resp.body.substr(0, 300));
  }
  if (resp.status != 200) {
    return StatusFromResponse(resp, absl::StrCat("watch ", label_));
  }
  return absl::OkStatus();
}

void Watcher::Run() {
  runtime::Backoff backoff(options_.backoff);
  bool need_list = true;
  while (!stop_.HasBeenNotified()) {
    if (need_list) {
      absl::Status st = ListAndSync();
      if (stop_.HasBeenNotified()) break;
      if (!st.ok()) {
        Failed(st, "listing");
        if (!Sleep(RetryDelayFor(st, backoff))) break;
        continue;
      }
      HERALD_LOG(INFO, "kube") << label_ << ": listed " << store_->size()
                               << " object(s) in the store at resourceVersion "
                               << resource_version();
      need_list = false;
      backoff.Reset();
    }
    absl::Status st = WatchOnce();
    if (stop_.HasBeenNotified()) break;
    if (restarts_ != nullptr) restarts_->Inc();
    if (absl::IsOutOfRange(st)) {
      HERALD_LOG(INFO, "kube")
          << label_ << ": resourceVersion " << resource_version()
          << " is too old (" << st.message() << "); relisting";
      need_list = true;
      continue;
    }
    if (st.ok()) {
      backoff.Reset();
      continue;
    }
    Failed(st, "watching");
    if (!Sleep(RetryDelayFor(st, backoff))) break;
  }
}

}  // namespace herald::kube
