// The engine's registrations: a handler process's handlers (or the command
// line's) resolved to their resources off the loop, added to the registry
// on it, the stream served, the watches started; pending handlers resolved
// again until they can be served.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/engine/engine.h"
#include "server/runtime/backoff.h"
#include "server/runtime/logging.h"

namespace herald::engine {
namespace {

// A registration's lines: what `who` registered, then each handler
// rejected or pending.
void LogRegistration(const std::string& who, const Registration& request,
                     const std::string& peer,
                     const RegistrationAnswer& answer) {
  HERALD_LOG(INFO, "engine")
      << who << " (" << request.process_name << ", " << peer << ") registered "
      << answer.accepted.size() << " handler(s), rejected "
      << answer.rejected.size() << ", credits " << request.credits;
  for (const auto& rej : answer.rejected) {
    HERALD_LOG(WARNING, "engine").WithHandler(rej.handler_id)
        << who << ": rejected handler '" << rej.handler_id
        << "': " << rej.reason;
  }
  for (const auto& p : answer.pending) {
    HERALD_LOG(WARNING, "engine").WithHandler(p.handler_id)
        << who << ": handler '" << p.handler_id << "' is pending: " << p.reason
        << "; resolving it again until it can be served, and holding the "
           "cycles it could belong to";
  }
}

}  // namespace

absl::Status Engine::Register(StreamId stream_id, Registration request,
                              const std::string& peer,
                              const std::shared_ptr<StreamSink>& sink) {
  if (request.credits == 0) {
    return absl::InvalidArgumentError("register: credits must be at least 1");
  }
  Resolve(stream_id, std::move(request), peer, sink);
  return absl::OkStatus();
}

void Engine::AddHandlers(std::vector<HandlerSpec> specs) {
  Registration request;
  request.process_name = "herald (command line)";
  for (auto& s : specs) {
    std::string id = s.id;
    request.handlers.push_back({std::move(id), std::move(s)});
  }
  Resolve(0, std::move(request), "", nullptr);
}

void Engine::Resolve(StreamId stream_id, Registration request,
                     const std::string& peer,
                     const std::shared_ptr<StreamSink>& sink) {
  // Resolving resources talks to the API server: not on the gRPC thread,
  // not on the loop.
  Spawn([this, stream_id, request = std::move(request), peer, sink] {
    struct Resolved {
      HandlerSpec spec;
      kube::ResourceInfo resource;
      // Set when the resource cannot be resolved yet: why.
      std::string pending;
    };
    std::vector<Resolved> resolved;
    RegistrationAnswer answer;
    for (const SpecEntry& entry : request.handlers) {
      if (!entry.spec.ok()) {
        answer.rejected.push_back(
            {entry.id, std::string(entry.spec.status().message())});
        continue;
      }
      const HandlerSpec& spec = *entry.spec;
      absl::Status st = ValidateSpec(spec);
      if (st.ok() && spec.resource.empty()) {
        resolved.push_back({spec, kube::ResourceInfo()});  // An activity.
        continue;
      }
      if (st.ok()) {
        auto r = discovery_->Resolve(spec.resource);
        if (r.ok()) {
          resolved.push_back({spec, *r});
          continue;
        }
        // Only an ambiguous name is the spec's fault. A resource that does
        // not exist yet, or an API server that cannot be asked now, leaves
        // the handler pending, never rejected.
        if (!absl::IsInvalidArgument(r.status())) {
          resolved.push_back(
              {spec, kube::ResourceInfo(), std::string(r.status().message())});
          continue;
        }
        st = r.status();
      }
      answer.rejected.push_back({spec.id, std::string(st.message())});
    }
    loop_.Post(
        [this, stream_id, request, peer, sink, resolved, answer]() mutable {
          StreamInfo info;
          info.stream = stream_id;
          info.process_name = request.process_name;
          info.client = request.client;
          info.peer = peer;
          info.connected = loop_.clock()->Now();
          info.credits = request.credits;
          std::vector<kube::ResourceInfo> resources;
          std::vector<std::string> startup;
          for (const auto& r : resolved) {
            if (!r.pending.empty()) continue;
            absl::Status st = registry_.Add(r.spec, r.resource);
            if (!st.ok()) {
              answer.rejected.push_back({r.spec.id, std::string(st.message())});
              continue;
            }
            answer.accepted.push_back(r.spec.id);
            info.handler_ids.push_back(r.spec.id);
            if (r.spec.cause == Cause::kStartup &&
                !activities_->StartupDone(r.spec.id)) {
              startup.push_back(r.spec.id);
            }
            if (r.spec.resource.empty()) continue;
            bool seen = false;
            for (const auto& x : resources)
              seen |= x.FullName() == r.resource.FullName();
            if (!seen) resources.push_back(r.resource);
          }
          std::set<std::string> pending_names;
          for (const auto& r : resolved) {
            if (r.pending.empty()) continue;
            const HandlerSpec& spec = r.spec;
            const std::string& reason = r.pending;
            absl::Status st =
                registry_.AddPending(spec, reason, loop_.clock()->Now());
            if (!st.ok()) {
              answer.rejected.push_back({spec.id, std::string(st.message())});
              continue;
            }
            answer.accepted.push_back(spec.id);
            info.handler_ids.push_back(spec.id);
            answer.pending.push_back({spec.id, reason});
            pending_names.insert(spec.resource);
          }
          if (sink) sink->Registered(answer);
          const std::string who =
              stream_id == 0 ? "sidecar" : StreamName(stream_id);
          LogRegistration(who, request, peer, answer);
          if (!pending_names.empty()) {
            absl::MutexLock lock(&pending_mu_);
            pending_names_.insert(pending_names.begin(), pending_names.end());
            if (!pending_thread_.joinable() && !pending_stop_) {
              pending_thread_ = std::thread([this] { ResolvePending(); });
            }
          }
          if (sink) {
            sinks_[stream_id] = sink;
            dispatcher_.AddStream(info, sink.get());
          }
          auto watch = [this, resources] {
            for (const auto& r : resources) StartWatch(r);
          };
          if (startup.empty()) {
            watch();
          } else if (role_ == Role::kStandby) {
            // A standby's caches fill at once; its startup handlers run when it
            // leads, before the processor takes anything.
            for (auto& id : startup) {
              if (std::find(deferred_startup_.begin(), deferred_startup_.end(),
                            id) == deferred_startup_.end()) {
                deferred_startup_.push_back(std::move(id));
              }
            }
            watch();
          } else {
            // Startup handlers run before the resources are watched.
            activities_->RunStartup(std::move(startup), std::move(watch));
          }
        });
  });
}

void Engine::NotRegistered(StreamId stream_id, const char* what,
                           DeliveryId delivery) {
  HERALD_LOG(WARNING, "engine")
      << StreamName(stream_id) << ": " << what
      << (delivery == 0
              ? ""
              : absl::StrCat(" for delivery '", DeliveryName(delivery), "'"))
      << " ignored: the stream is not registered (its registration is still "
         "being resolved, or the stream has ended)";
}

void Engine::ResolvePending() {
  runtime::Backoff backoff(options_.watch.backoff);
  while (true) {
    std::set<std::string> names;
    {
      absl::MutexLock lock(&pending_mu_);
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pending_mu_) {
        return pending_stop_ || !pending_names_.empty();
      };
      pending_mu_.Await(absl::Condition(&wake));
      if (pending_stop_) return;
      names = pending_names_;
    }
    for (const auto& name : names) {
      auto r = discovery_->Resolve(name);
      if (!r.ok()) {
        if (absl::IsInvalidArgument(r.status())) {
          HERALD_LOG(ERROR, "engine") << r.status().message();
        }
        const std::string reason(r.status().message());
        loop_.Post(
            [this, name, reason] { registry_.SetPendingReason(name, reason); });
        continue;
      }
      {
        absl::MutexLock lock(&pending_mu_);
        pending_names_.erase(name);
      }
      // Activated on the loop before the watch can post any event (the
      // watch starts in the task after).
      loop_.Post(
          [this, name, resource = *r] { ActivatePending(name, resource); });
      loop_.Post([this, resource = *r] { StartWatch(resource); });
    }
    {
      absl::MutexLock lock(&pending_mu_);
      if (pending_names_.empty()) {
        backoff.Reset();
        continue;
      }
    }
    if (!api_->clock()->SleepFor(backoff.Next(), &pending_stopped_)) return;
  }
}

void Engine::ActivatePending(const std::string& name,
                             const kube::ResourceInfo& resource) {
  HERALD_ASSERT_ON_LOOP(&loop_);
  std::vector<std::string> conflicts;
  std::vector<std::string> ids = registry_.Resolve(name, resource, &conflicts);
  for (const auto& c : conflicts) {
    HERALD_LOG(ERROR, "engine")
        << "a pending handler of '" << name << "' cannot be served: " << c;
  }
  if (!ids.empty()) {
    HERALD_LOG(INFO, "engine")
        << "'" << name << "' is " << resource.FullName() << ": handler(s) "
        << absl::StrJoin(ids, ", ") << " are served from now on";
  }
  // Objects held while these handlers were pending go on (the watch was
  // started or asked to reprocess them after this).
  processor_->Reprocess(resource.FullName());
}

}  // namespace herald::engine
