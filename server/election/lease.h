// One coordination.k8s.io/v1 Lease, read, created and replaced with
// optimistic concurrency: an update carries the resourceVersion it read, and
// a 409 means another replica wrote first (a lost race). Leader election
// uses one per instance; anything else that needs a lease (a shard's) takes
// its own.
#ifndef HERALD_SERVER_ELECTION_LEASE_H_
#define HERALD_SERVER_ELECTION_LEASE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/kube/api_client.h"

namespace herald::election {

// A Lease's spec: client-go's LeaderElectionRecord.
struct LeaseRecord {
  std::string holder;  // spec.holderIdentity; "" when released.
  int lease_duration_seconds = 0;
  // spec.acquireTime and spec.renewTime as the API server keeps them
  // (MicroTime text); informational: expiry is judged on the observer's
  // clock, never on these.
  std::string acquire_time;
  std::string renew_time;
  int transitions = 0;  // spec.leaseTransitions

  bool operator==(const LeaseRecord& o) const {
    return holder == o.holder &&
           lease_duration_seconds == o.lease_duration_seconds &&
           acquire_time == o.acquire_time && renew_time == o.renew_time &&
           transitions == o.transitions;
  }
  bool operator!=(const LeaseRecord& o) const { return !(*this == o); }
};

// A Lease as read or written: its record and the resourceVersion an update
// must carry.
struct LeaseState {
  LeaseRecord record;
  std::string resource_version;
};

// `t` as a Kubernetes MicroTime ("2026-12-01T16:00:00.123456Z").
std::string MicroTime(absl::Time t);

// The Lease's JSON parsed; InvalidArgument naming the field that is wrong.
absl::StatusOr<LeaseState> ParseLease(const std::string& json);

class Lease {
 public:
  Lease(kube::ApiClient* api, std::string ns, std::string name);

  // Each call is one attempt (no retries: the elector retries on its own
  // schedule), and takes at most `timeout`. Errors are the ApiClient's:
  // NotFound (404) from Get when there is no Lease, AlreadyExists or Aborted
  // (409) when another replica created or updated it first.
  absl::StatusOr<LeaseState> Get(absl::Duration timeout);
  absl::StatusOr<LeaseState> Create(const LeaseRecord& record,
                                    absl::Duration timeout);
  // Replaces the spec, given the resourceVersion read.
  absl::StatusOr<LeaseState> Update(const LeaseRecord& record,
                                    const std::string& resource_version,
                                    absl::Duration timeout);

  const std::string& ns() const { return ns_; }
  const std::string& name() const { return name_; }
  // "namespace/name", for logs.
  std::string Describe() const { return ns_ + "/" + name_; }

 private:
  std::string Body(const LeaseRecord& record,
                   const std::string& resource_version) const;
  absl::StatusOr<LeaseState> Send(const std::string& method,
                                  const std::string& target, std::string body,
                                  absl::Duration timeout);

  kube::ApiClient* api_;
  std::string ns_;
  std::string name_;
};

// Kubernetes' definition: that a conflict (409) was the answer.
bool IsConflict(const absl::Status& status);

}  // namespace herald::election

#endif  // HERALD_SERVER_ELECTION_LEASE_H_
