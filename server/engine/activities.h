// The handlers the engine delivers itself, about no object: startup handlers
// (one after another before the watches start; retried after their backoff;
// a failure past their limits, or a permanent one, is fatal), cleanup
// handlers (at shutdown) and probe handlers (for /healthz). Their outcomes
// count in the handlers' statistics like any other.
//
// Loop-owned: every method runs on the loop. What waits for the loop from
// another thread (the stop-wait, a probe) is the engine's.
#ifndef HERALD_SERVER_ENGINE_ACTIVITIES_H_
#define HERALD_SERVER_ENGINE_ACTIVITIES_H_

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "server/engine/dispatcher.h"
#include "server/engine/processor.h"
#include "server/engine/registry.h"
#include "server/runtime/event_loop.h"

namespace herald::engine {

class Activities {
 public:
  // `on_fatal` is told why the sidecar cannot go on (a startup handler
  // failed for good).
  Activities(runtime::EventLoop* loop, Registry* registry,
             Dispatcher* dispatcher, Processor* processor,
             std::function<void(const std::string&)> on_fatal);

  // Startup handlers that succeeded in this run are not run again.
  bool StartupDone(const std::string& id) const {
    return startup_done_.count(id) > 0;
  }
  // Runs the startup handlers `ids` one after another, then `then`. Their
  // memo patches go into the operator memo.
  void RunStartup(std::vector<std::string> ids, std::function<void()> then);

  // Delivers every cleanup handler that a process serves (the others are
  // skipped, with a warning); `done` runs once all have answered (at once
  // when there are none). Returns how many were delivered.
  int RunCleanups(std::function<void()> done);

  // The probe handlers' results as {handler id: result or {"error": ...}}.
  struct ProbeRun {
    nlohmann::json results = nlohmann::json::object();
    bool ok = true;
    int pending = 0;
    std::vector<std::string> delivery_ids;
  };
  // Delivers every probe handler; `answered` runs on the loop once all have
  // answered (at once when there are none). `run` collects the results.
  void RunProbes(const std::shared_ptr<ProbeRun>& run,
                 std::function<void()> answered);
  // Cancels the probes still out, recording that they did not answer
  // within `wait`.
  void AbandonProbes(ProbeRun& run, absl::Duration wait);

  // Counts an activity's outcome for `h`; returns its status with an
  // unexpected (or unset) error resolved by the handler's errors mode.
  v1::OutcomeStatus Count(const Handler& h, v1::OutcomeStatus status);

 private:
  void RunStartupStep(std::vector<std::string> ids, size_t next, uint32_t retry,
                      absl::Time started, std::function<void()> then);
  // A delivery of `h` for `cause`, counted.
  v1::Delivery NewDelivery(const Handler& h, Cause cause);

  runtime::EventLoop* loop_;
  Registry* registry_;
  Dispatcher* dispatcher_;
  Processor* processor_;
  std::function<void(const std::string&)> on_fatal_;
  std::set<std::string> startup_done_;
  uint64_t next_delivery_ = 1;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_ACTIVITIES_H_
