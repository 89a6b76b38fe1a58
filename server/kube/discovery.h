// Discovery: which resources the API server serves, and resolving the names
// users write ("kopfexamples", "KopfExample.kopf.dev", "deployments.v1.apps",
// "pods", "kex") to one resource at its preferred version.
#ifndef HERALD_SERVER_KUBE_DISCOVERY_H_
#define HERALD_SERVER_KUBE_DISCOVERY_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/kube/api_client.h"

namespace herald::kube {

// One resource as discovery describes it.
struct ResourceInfo {
  std::string group;  // "" for the core group.
  std::string version;
  std::string plural;
  std::string singular;
  std::string kind;
  std::vector<std::string> short_names;
  std::vector<std::string> verbs;
  bool namespaced = false;
  bool has_status = false;  // Serves the status subresource.

  // "/api/v1" or "/apis/<group>/<version>".
  std::string ApiPath() const;
  // The collection, in `ns` or (empty) across namespaces / cluster-scoped.
  std::string CollectionPath(const std::string& ns) const;
  // One object, optionally a subresource of it ("status").
  std::string ObjectPath(const std::string& ns, const std::string& name,
                         const std::string& subresource = "") const;
  // "kopfexamples.v1.kopf.dev", "pods.v1".
  std::string FullName() const;
  // "kopf.dev/v1" or "v1".
  std::string ApiVersion() const;
};

// Parses one group-version's resource list (the answer of /api/v1 or
// /apis/<g>/<v>), subresources folded into their resources.
absl::StatusOr<std::vector<ResourceInfo>> ParseResourceList(
    const std::string& group, const std::string& version,
    const std::string& json);

// True when the user-written `name` ("kopfexamples", "kex",
// "KopfExample.kopf.dev", "kopfexamples.v1.kopf.dev") could denote `r`.
bool CouldDenote(const std::string& name, const ResourceInfo& r);

// Resource names as --resource lists them: comma-separated, each as kubectl
// names it ("kopfexamples,deployments.v1.apps"); "" for none.
struct ResourceNames {
  std::vector<std::string> names;
};
// Abseil's flag extension point, so absl::ParseFlag and absl::UnparseFlag
// take a list. An empty (or blank) entry is an error naming its position.
bool AbslParseFlag(absl::string_view text, ResourceNames* list,
                   std::string* error);
std::string AbslUnparseFlag(const ResourceNames& list);

// Thread-safe. Caches what it fetched; a name it cannot resolve makes it
// fetch again (a CRD may have appeared since).
class Discovery {
 public:
  explicit Discovery(ApiClient* api) : api_(api) {}

  // Resolves a user-written name. NotFound when nothing matches and every
  // group the name could be in answered; Unavailable when nothing matches
  // but a group-version it could be in did not answer (an API server that
  // is restarting answers 503 for some groups): a transient state, never a
  // final answer. InvalidArgument when several resources in different
  // groups match.
  absl::StatusOr<ResourceInfo> Resolve(const std::string& name);

  // Drops the cache.
  void Invalidate();

 private:
  struct GroupInfo {
    std::string name;
    std::string preferred_version;
    std::vector<std::string> versions;
  };
  // A group-version whose resource list could not be fetched.
  struct Failed {
    std::string group;
    std::string version;
    absl::Status status;
  };

  absl::Status RefreshLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `miss`: nothing matched (NotFound or Unavailable).
  absl::StatusOr<ResourceInfo> ResolveLocked(const std::string& name,
                                             bool* miss)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ApiClient* api_;
  absl::Mutex mu_;
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<GroupInfo> groups_ ABSL_GUARDED_BY(mu_);
  std::vector<Failed> failed_ ABSL_GUARDED_BY(mu_);
  // "group/version" to its resources.
  std::map<std::string, std::vector<ResourceInfo>> resources_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::kube

#endif  // HERALD_SERVER_KUBE_DISCOVERY_H_
