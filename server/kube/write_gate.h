// Whether requests that change the cluster may be sent now. Leader election
// opens it while the lease is held and until the renew deadline: the gate
// closes on its own when that time passes, whichever thread is late to
// notice, so a process that was stopped (SIGSTOP, a long pause) and wakes
// after another replica could hold the lease sends nothing more. The
// ApiClient asks it before every attempt of every request other than a GET
// (a retry of a PATCH included); requests already on the wire are counted,
// so that a graceful stop can wait for them before releasing the lease.
//
// Thread-safe.
#ifndef HERALD_SERVER_KUBE_WRITE_GATE_H_
#define HERALD_SERVER_KUBE_WRITE_GATE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/runtime/clock.h"

namespace herald::kube {

class WriteGate {
 public:
  // Closed until OpenUntil. `clock` decides when an opening ends (a
  // monotonic one in production).
  explicit WriteGate(runtime::Clock* clock);

  // Lets requests through until `until` on the gate's clock (later calls
  // move it, forward or back).
  void OpenUntil(absl::Time until);
  // Nothing passes after this returns (requests already sent finish).
  void Close();
  bool open();

  // Before sending `what`: OK, counting it in flight until Exit, or
  // FailedPrecondition naming it when the gate is closed.
  absl::Status Enter(absl::string_view what);
  void Exit();
  // Waits up to `timeout` (real time) for the requests in flight to end;
  // true when none is left.
  bool WaitIdle(absl::Duration timeout);
  // Requests refused so far.
  uint64_t refused();

 private:
  runtime::Clock* clock_;
  absl::Mutex mu_;
  absl::Time until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace herald::kube

#endif  // HERALD_SERVER_KUBE_WRITE_GATE_H_
