#include "server/kube/write_gate.h"

#include "absl/strings/str_cat.h"

namespace herald::kube {

WriteGate::WriteGate(runtime::Clock* clock) : clock_(clock) {}

void WriteGate::OpenUntil(absl::Time until) {
  absl::MutexLock lock(&mu_);
  until_ = until;
}

void WriteGate::Close() {
  absl::MutexLock lock(&mu_);
  until_ = absl::InfinitePast();
}

bool WriteGate::open() {
  absl::MutexLock lock(&mu_);
  return clock_->Now() < until_;
}

absl::Status WriteGate::Enter(absl::string_view what) {
  absl::MutexLock lock(&mu_);
  if (clock_->Now() < until_) {
    ++in_flight_;
    return absl::OkStatus();
  }
  ++refused_;
  return absl::FailedPreconditionError(
      absl::StrCat(what,
                   ": not sent: this replica does not hold the leader "
                   "lease (or its renew deadline passed)"));
}

void WriteGate::Exit() {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

bool WriteGate::WaitIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_flight_ == 0;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

uint64_t WriteGate::refused() {
  absl::MutexLock lock(&mu_);
  return refused_;
}

}  // namespace herald::kube
