// Kopf's timers as pure functions: which timer handlers run on an object,
// when they first run, when an idle timer may run, and when a run's next
// one comes. The processor keeps the timers' state and schedules them on
// the loop.
#ifndef HERALD_SERVER_ENGINE_TIMERS_H_
#define HERALD_SERVER_ENGINE_TIMERS_H_

#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "nlohmann/json.hpp"
#include "server/engine/registry.h"

namespace herald::engine {

// A timer runs on an object that passes its filters and is not being
// deleted.
bool TimerApplies(const Handler& h, const nlohmann::json& body);

// The first run: the initial delay after the timer starts at `now`.
absl::Time FirstTimerRun(const Handler& h, absl::Time now);

// An idle timer runs only once the object has not changed for its idle
// time: the time to wait for, or nullopt when it may run at `now`.
absl::optional<absl::Time> IdleUntil(const Handler& h, absl::Time changed_at,
                                     absl::Time now);

// The wait until the next run, a run having ended at `now` asking for
// `next` (its interval, or an error's delay). A sharp timer keeps to the
// grid of its interval counted from the object's first sight.
absl::Duration NextTimerRunIn(absl::Duration next, bool sharp,
                              absl::Time first_seen, absl::Time now);

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_TIMERS_H_
