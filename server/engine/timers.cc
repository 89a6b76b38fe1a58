#include "server/engine/timers.h"

#include "server/engine/causes.h"

namespace herald::engine {

bool TimerApplies(const Handler& h, const nlohmann::json& body) {
  return h.cause() == Cause::kTimer && !Deleting(body) && MatchesMeta(h, body);
}

absl::Time FirstTimerRun(const Handler& h, absl::Time now) {
  return now + h.spec.timer.initial_delay;
}

absl::optional<absl::Time> IdleUntil(const Handler& h, absl::Time changed_at,
                                     absl::Time now) {
  const absl::Duration idle = h.spec.timer.idle.value_or(absl::ZeroDuration());
  if (idle > absl::ZeroDuration() && now - changed_at < idle) {
    return changed_at + idle;
  }
  return absl::nullopt;
}

absl::Duration NextTimerRunIn(absl::Duration next, bool sharp,
                              absl::Time first_seen, absl::Time now) {
  if (!sharp) return next;
  const absl::Duration since = now - first_seen;
  return next - (since - absl::Floor(since, next));
}

}  // namespace herald::engine
