// Leader election in the engine: what a standby does when it becomes the
// leader (Lead), and whether the engine delivers now (Delivering). A standby
// is an engine with Options::standby: see engine.h.
#include <string>
#include <vector>

#include "server/engine/engine.h"
#include "server/runtime/logging.h"

namespace herald::engine {

bool Engine::Delivering() const {
  return delivering_.load() &&
         (!options_.may_deliver || options_.may_deliver());
}

LeadershipSnapshot Engine::Leadership() const {
  if (!options_.leadership) return LeadershipSnapshot();
  LeadershipSnapshot s = options_.leadership();
  s.leading = s.leading && Delivering();
  return s;
}

void Engine::Lead() {
  loop_.Post([this] {
    if (role_ != Role::kStandby) return;
    role_ = Role::kStarting;
    delivering_ = true;
    dispatcher_.Resume();
    std::vector<std::string> startup;
    for (const auto& id : deferred_startup_) {
      if (!activities_->StartupDone(id)) startup.push_back(id);
    }
    deferred_startup_.clear();
    auto take = [this] {
      role_ = Role::kLeading;
      // Events from now on reach the processor after this task; what came
      // before is in the stores, read now.
      feeding_ = true;
      size_t objects = 0;
      for (kube::ResourceWatch* w : WatchList()) {
        if (w->state() != kube::ResourceWatch::State::kWatching) continue;
        const bool listed = w->synced();
        auto cached = w->store().List("", true);
        objects += cached.size();
        processor_->Adopt(w->resource(), cached, listed);
      }
      HERALD_LOG(INFO, "engine")
          << "leading: took " << objects
          << " cached object(s) as a first listing; handling from where "
             "their annotations say";
    };
    if (startup.empty()) {
      take();
    } else {
      HERALD_LOG(INFO, "engine") << "leading: running " << startup.size()
                                 << " startup handler(s) first";
      activities_->RunStartup(std::move(startup), std::move(take));
    }
  });
}

}  // namespace herald::engine
