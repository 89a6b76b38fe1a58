#include "server/election/leader_elector.h"

#include <algorithm>
#include <utility>

#include "server/runtime/logging.h"

namespace herald::election {

LeaderElector::LeaderElector(Lease* lease, ElectionConfig config,
                             Callbacks callbacks, runtime::Clock* clock,
                             runtime::Clock* wall, kube::WriteGate* gate)
    : lease_(lease),
      config_(std::move(config)),
      callbacks_(std::move(callbacks)),
      clock_(clock),
      wall_(wall),
      gate_(gate) {}

LeaderElector::~LeaderElector() { Stop(false); }

void LeaderElector::Start() {
  thread_ = std::thread([this] { Run(); });
}

bool LeaderElector::Sleep(absl::Duration d) {
  if (stop_.HasBeenNotified()) return false;
  return clock_->SleepFor(d, &stop_);
}

void LeaderElector::Observe(const LeaseState& state, absl::Time now) {
  std::string told;
  bool changed_holder = false;
  {
    absl::MutexLock lock(&mu_);
    observed_rv_ = state.resource_version;
    if (!observed_any_ || state.record != observed_) {
      changed_holder =
          !observed_any_ || state.record.holder != observed_.holder;
      observed_ = state.record;
      observed_time_ = now;
      observed_any_ = true;
      told = observed_.holder;
    }
  }
  if (!changed_holder) return;
  HERALD_LOG(INFO, "election")
      << "lease " << lease_->Describe() << " is "
      << (told.empty()
              ? std::string("released (no holder)")
              : "held by " + told +
                    (told == config_.identity ? " (this replica)" : ""));
  if (callbacks_.new_leader) callbacks_.new_leader(told);
}

bool LeaderElector::TryAcquireOrRenew(absl::Duration timeout) {
  const std::string stamp = MicroTime(wall_->Now());
  LeaseRecord mine;
  mine.holder = config_.identity;
  mine.lease_duration_seconds =
      static_cast<int>(absl::ToInt64Seconds(config_.lease_duration));
  mine.acquire_time = stamp;
  mine.renew_time = stamp;

  auto got = lease_->Get(timeout);
  if (!got.ok()) {
    if (!absl::IsNotFound(got.status())) {
      HERALD_LOG(WARNING, "election")
          << "reading lease " << lease_->Describe()
          << " failed: " << kube::ExplainFailure(got.status());
      return false;
    }
    auto created = lease_->Create(mine, timeout);
    if (!created.ok()) {
      if (IsConflict(created.status())) {
        HERALD_LOG(INFO, "election")
            << "lease " << lease_->Describe()
            << ": another replica created it first (409)";
      } else {
        HERALD_LOG(WARNING, "election")
            << "creating lease " << lease_->Describe()
            << " failed: " << kube::ExplainFailure(created.status());
      }
      return false;
    }
    Observe(*created, clock_->Now());
    return true;
  }
  // Seen now, after the answer: the later instant, so expiry is judged late
  // rather than early.
  const absl::Time now = clock_->Now();
  Observe(*got, now);
  const LeaseRecord& old = got->record;
  {
    absl::MutexLock lock(&mu_);
    if (!old.holder.empty() && old.holder != config_.identity &&
        observed_time_ + absl::Seconds(old.lease_duration_seconds) > now) {
      return false;  // Held by another replica, not expired.
    }
  }
  if (old.holder == config_.identity) {
    mine.acquire_time = old.acquire_time;
    mine.transitions = old.transitions;
  } else {
    mine.transitions = old.transitions + 1;
  }
  auto updated = lease_->Update(mine, got->resource_version, timeout);
  if (!updated.ok()) {
    if (IsConflict(updated.status())) {
      HERALD_LOG(INFO, "election")
          << "lease " << lease_->Describe()
          << ": another replica wrote it first (409); trying again later";
    } else {
      HERALD_LOG(WARNING, "election")
          << "updating lease " << lease_->Describe()
          << " failed: " << kube::ExplainFailure(updated.status());
    }
    return false;
  }
  Observe(*updated, clock_->Now());
  return true;
}

bool LeaderElector::Leading() {
  absl::MutexLock lock(&mu_);
  return leading_ && clock_->Now() < valid_until_;
}

ElectionStatus LeaderElector::Status() {
  ElectionStatus s;
  s.leading = Leading();
  absl::MutexLock lock(&mu_);
  s.identity = config_.identity;
  s.holder = observed_.holder;
  s.transitions = observed_.transitions;
  s.lease_namespace = lease_->ns();
  s.lease_name = lease_->name();
  return s;
}

void LeaderElector::Lost() {
  if (gate_ != nullptr) gate_->Close();
  {
    absl::MutexLock lock(&mu_);
    leading_ = false;
  }
  HERALD_LOG(ERROR, "election")
      << config_.identity << " lost the lease " << lease_->Describe()
      << ": not renewed within the renew deadline of "
      << absl::FormatDuration(config_.renew_deadline)
      << "; delivering and writing stopped at that deadline";
  if (callbacks_.stopped_leading) callbacks_.stopped_leading();
}

void LeaderElector::Run() {
  HERALD_LOG(INFO, "election")
      << config_.identity << " is a candidate for lease " << lease_->Describe()
      << " (lease duration " << absl::FormatDuration(config_.lease_duration)
      << ", renew deadline " << absl::FormatDuration(config_.renew_deadline)
      << ", retry period " << absl::FormatDuration(config_.retry_period) << ")";
  // Acquire.
  absl::Time start;
  while (true) {
    if (stop_.HasBeenNotified()) return;
    start = clock_->Now();
    if (TryAcquireOrRenew(config_.renew_deadline)) break;
    if (!Sleep(config_.retry_period)) return;
  }
  {
    absl::MutexLock lock(&mu_);
    leading_ = true;
    valid_until_ = start + config_.renew_deadline;
    if (gate_ != nullptr) gate_->OpenUntil(valid_until_);
  }
  HERALD_LOG(INFO, "election") << config_.identity << " acquired lease "
                               << lease_->Describe() << "; leading";
  if (callbacks_.started_leading) callbacks_.started_leading();
  // Renew.
  while (true) {
    if (!Sleep(config_.retry_period)) return;
    while (true) {
      absl::Time until;
      {
        absl::MutexLock lock(&mu_);
        until = valid_until_;
      }
      start = clock_->Now();
      if (start >= until) return Lost();
      if (TryAcquireOrRenew(until - start)) {
        absl::MutexLock lock(&mu_);
        valid_until_ = start + config_.renew_deadline;
        if (gate_ != nullptr) gate_->OpenUntil(valid_until_);
        break;
      }
      const absl::Time now = clock_->Now();
      if (now >= until) return Lost();
      if (!Sleep(std::min(config_.retry_period, until - now))) return;
    }
  }
}

void LeaderElector::Stop(bool release) {
  if (stopped_) return;
  stopped_ = true;
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
  if (gate_ != nullptr) gate_->Close();
  LeaseRecord record;
  std::string rv;
  {
    absl::MutexLock lock(&mu_);
    // Past the renew deadline another replica may hold it: only a lease
    // still held is released (the update carries the resourceVersion last
    // seen, so it cannot overwrite another holder's record either).
    const bool held = leading_ && clock_->Now() < valid_until_ &&
                      observed_.holder == config_.identity;
    leading_ = false;
    if (!release || !held) return;
    record.transitions = observed_.transitions;
    rv = observed_rv_;
  }
  const std::string stamp = MicroTime(wall_->Now());
  record.lease_duration_seconds = 1;
  record.acquire_time = stamp;
  record.renew_time = stamp;
  auto released = lease_->Update(record, rv, config_.renew_deadline);
  if (!released.ok()) {
    HERALD_LOG(WARNING, "election") << "releasing lease " << lease_->Describe()
                                    << " failed (it expires on its own): "
                                    << kube::ExplainFailure(released.status());
    return;
  }
  Observe(*released, clock_->Now());
  HERALD_LOG(INFO, "election")
      << config_.identity << " released lease " << lease_->Describe();
}

}  // namespace herald::election
