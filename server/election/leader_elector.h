// Leader election over a Lease, with client-go's semantics
// (k8s.io/client-go/tools/leaderelection):
//
// - A candidate tries every retry period to acquire the Lease: it creates it
//   when there is none, takes it when it is released (no holder) or expired,
//   and renews it when it holds it; every write carries the resourceVersion
//   read, so a 409 is a lost race, not an error.
// - Expiry is judged on this process's monotonic clock, never on the other
//   replica's: the elector records when it last saw the record change, and
//   a foreign holder's lease has expired once leaseDurationSeconds (the
//   record's) have passed since then without a change.
// - The leader renews every retry period. It leads until its renew
//   deadline, counted from the start of its last successful renewal (the
//   server wrote after that instant, so no other replica can have seen the
//   lease expire before it plus the lease duration). Leading() turns false
//   at that instant by the clock, whichever thread asks, and the write gate
//   closes then on its own: a process stopped and woken later sends
//   nothing. Each renewal's request may take only what is left until the
//   deadline.
// - Stop(release) on a graceful stop gives the lease up (client-go's
//   ReleaseOnCancel): no holder, leaseDurationSeconds 1, so that a standby
//   takes over at its next retry instead of after a lease duration.
//
// One Lease per instance. Thread-safe; the callbacks run on the elector's
// thread.
#ifndef HERALD_SERVER_ELECTION_LEADER_ELECTOR_H_
#define HERALD_SERVER_ELECTION_LEADER_ELECTOR_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/election/lease.h"
#include "server/kube/write_gate.h"
#include "server/runtime/clock.h"

namespace herald::election {

// client-go's defaults. client-go's constraints hold (the App checks them as
// flags): lease_duration > renew_deadline > 1.2 * retry_period > 0, and
// lease_duration a whole number of seconds (the Lease keeps seconds).
struct ElectionConfig {
  std::string identity;
  absl::Duration lease_duration = absl::Seconds(15);
  absl::Duration renew_deadline = absl::Seconds(10);
  absl::Duration retry_period = absl::Seconds(2);
};

// What inspection and metrics read.
struct ElectionStatus {
  // This instance holds the lease and its renew deadline has not passed.
  bool leading = false;
  std::string identity;
  // The holder last observed ("" when released or not read yet).
  std::string holder;
  std::string lease_namespace;
  std::string lease_name;
  int transitions = 0;
};

class LeaderElector {
 public:
  struct Callbacks {
    // This instance acquired the lease (the gate is open already).
    std::function<void()> started_leading;
    // This instance could not renew before its renew deadline: it does not
    // lead since the deadline (the gate is closed already). The elector's
    // thread ends after this.
    std::function<void()> stopped_leading;
    // The holder observed changed ("" when the lease was released).
    std::function<void(const std::string& holder)> new_leader;
  };

  // `clock` judges expiry and deadlines and paces retries (monotonic in
  // production); `wall` stamps the record's acquireTime and renewTime.
  // `gate`, if given, is opened while this instance leads.
  LeaderElector(Lease* lease, ElectionConfig config, Callbacks callbacks,
                runtime::Clock* clock = runtime::Clock::Monotonic(),
                runtime::Clock* wall = runtime::Clock::Real(),
                kube::WriteGate* gate = nullptr);
  // Stop(false).
  ~LeaderElector();
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // Runs the election on a thread of its own until Stop or a lost lease.
  void Start();
  // Ends the thread; then, when `release` and this instance holds the
  // lease, gives it up. Idempotent.
  void Stop(bool release);

  // The election itself, on the calling thread: acquires, then renews until
  // Stop or until the renew deadline passes without a renewal (then
  // stopped_leading is called and it returns).
  void Run();
  // One attempt, client-go's tryAcquireOrRenew: true when this instance
  // holds the lease afterwards. Each request takes at most `timeout`.
  bool TryAcquireOrRenew(absl::Duration timeout);

  // True while this instance holds the lease and its renew deadline has not
  // passed. Any thread; cheap (what gates every delivery).
  bool Leading();
  ElectionStatus Status();
  const ElectionConfig& config() const { return config_; }

 private:
  // Sleeps `d` on the clock; false when stopped.
  bool Sleep(absl::Duration d);
  // Takes `state` as observed (a write's answer or a changed record) at
  // `now`; tells new_leader when the holder changed.
  void Observe(const LeaseState& state, absl::Time now);
  void Lost();

  Lease* lease_;
  const ElectionConfig config_;
  const Callbacks callbacks_;
  runtime::Clock* clock_;
  runtime::Clock* wall_;
  kube::WriteGate* gate_;
  absl::Notification stop_;
  std::thread thread_;
  bool stopped_ = false;  // Stop's own.

  absl::Mutex mu_;
  LeaseRecord observed_ ABSL_GUARDED_BY(mu_);
  std::string observed_rv_ ABSL_GUARDED_BY(mu_);
  bool observed_any_ ABSL_GUARDED_BY(mu_) = false;
  // When the record was last seen to change, on `clock_`.
  absl::Time observed_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool leading_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time valid_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace herald::election

#endif  // HERALD_SERVER_ELECTION_LEADER_ELECTOR_H_
