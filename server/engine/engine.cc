#include "server/engine/engine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/runtime/logging.h"

namespace herald::engine {

// Sends watch events to the processor and to the observer.
class Engine::Tee : public kube::WatchHandler {
 public:
  Tee(Processor* processor, kube::WatchHandler* observer)
      : processor_(processor), observer_(observer) {}
  void OnEvent(const kube::ResourceInfo& r,
               const kube::WatchEvent& e) override {
    if (observer_) observer_->OnEvent(r, e);
    processor_->OnEvent(r, e);
  }
  void OnListed(const kube::ResourceInfo& r, const std::string& ns) override {
    if (observer_) observer_->OnListed(r, ns);
    processor_->OnListed(r, ns);
  }

 private:
  Processor* processor_;
  kube::WatchHandler* observer_;
};

Engine::Engine(kube::ApiClient* api, kube::Discovery* discovery,
               Options options)
    : api_(api), discovery_(discovery), options_(std::move(options)) {
  writer_ = std::make_unique<ApiObjectWriter>(api_, &loop_);
  processor_ = std::make_unique<Processor>(&loop_, &registry_, &dispatcher_,
                                           writer_.get(), options_.engine);
  tee_ = std::make_unique<Tee>(processor_.get(), options_.observer);
}

Engine::~Engine() { Stop(); }

void Engine::Start() {
  loop_thread_ = std::thread([this] { loop_.Run(); });
}

void Engine::Stop() {
  std::vector<Registration> registrations;
  {
    absl::MutexLock lock(&watch_mu_);
    if (stopping_) return;
    stopping_ = true;
    registrations.swap(registrations_);
  }
  for (auto& r : registrations) r.thread.join();
  {
    absl::MutexLock lock(&watch_mu_);
    for (auto& w : watches_) w->Stop();
  }
  loop_.Stop();
  if (loop_thread_.joinable()) loop_thread_.join();
}

void Engine::StartWatchLocked(const kube::ResourceInfo& resource) {
  const std::string name = resource.FullName();
  for (size_t i = 0; i < watches_.size(); ++i) {
    if (watched_names_[i] == name ||
        watches_[i]->resource().FullName() == name) {
      // Already watched: look at its objects again for the new handlers.
      loop_.Post([this, name] { processor_->Reprocess(name); });
      return;
    }
  }
  auto w = std::make_unique<kube::ResourceWatch>(
      api_, discovery_, name, options_.scope, tee_.get(), options_.watch);
  w->Start();
  watches_.push_back(std::move(w));
  watched_names_.push_back(name);
}

void Engine::Watch(const std::string& resource_name) {
  absl::MutexLock lock(&watch_mu_);
  if (stopping_) return;
  auto w = std::make_unique<kube::ResourceWatch>(api_, discovery_,
                                                 resource_name, options_.scope,
                                                 tee_.get(), options_.watch);
  w->Start();
  watches_.push_back(std::move(w));
  watched_names_.push_back(resource_name);
}

void Engine::Inspect(std::function<void(const View&)> fn) {
  loop_.Post([this, fn = std::move(fn)] {
    std::vector<kube::ResourceWatch*> watches;
    {
      absl::MutexLock lock(&watch_mu_);
      for (auto& w : watches_) watches.push_back(w.get());
    }
    View view{registry_, dispatcher_, *processor_, std::move(watches),
              started_,  options_,    api_server_};
    fn(view);
  });
}

std::string Engine::NewStreamId() {
  return absl::StrCat("stream-", next_stream_.fetch_add(1));
}

void Engine::SendError(StreamSink* sink, v1::ProtocolErrorCode code,
                       const std::string& delivery_id,
                       const std::string& message) {
  v1::ConnectResponse msg;
  auto* e = msg.mutable_protocol_error();
  e->set_code(code);
  e->set_delivery_id(delivery_id);
  e->set_message(message);
  sink->Send(msg);
}

void Engine::Register(const std::string& stream_id, const v1::Register& request,
                      const std::string& peer,
                      std::shared_ptr<StreamSink> sink) {
  if (request.credits() == 0) {
    SendError(sink.get(), v1::PROTOCOL_ERROR_CODE_INVALID_ARGUMENT, "",
              "register: credits must be at least 1");
    return;
  }
  // Resolving resources talks to the API server: not on the gRPC thread,
  // not on the loop.
  absl::MutexLock lock(&watch_mu_);
  if (stopping_) return;
  for (auto it = registrations_.begin(); it != registrations_.end();) {
    if (it->done->load()) {
      it->thread.join();
      it = registrations_.erase(it);
    } else {
      ++it;
    }
  }
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::thread thread([this, stream_id, request, peer, sink, done] {
    struct Resolved {
      v1::HandlerSpec spec;
      kube::ResourceInfo resource;
    };
    std::vector<Resolved> resolved;
    v1::Registered answer;
    answer.set_stream_id(stream_id);
    answer.set_max_message_bytes(options_.max_message_bytes);
    answer.set_sidecar_version(options_.version);
    for (const auto& spec : request.handlers()) {
      absl::Status st = ValidateSpec(spec);
      if (st.ok()) {
        auto r = discovery_->Resolve(spec.resource());
        if (r.ok()) {
          resolved.push_back({spec, *r});
          continue;
        }
        st = r.status();
      }
      auto* rej = answer.add_rejections();
      rej->set_handler_id(spec.id());
      rej->set_reason(std::string(st.message()));
    }
    loop_.Post(
        [this, stream_id, request, peer, sink, resolved, answer]() mutable {
          StreamInfo info;
          info.stream_id = stream_id;
          info.process_name = request.process_name();
          info.client = request.client();
          info.peer = peer;
          info.connected = loop_.clock()->Now();
          info.credits = request.credits();
          std::vector<kube::ResourceInfo> resources;
          for (const auto& r : resolved) {
            absl::Status st = registry_.Add(r.spec, r.resource);
            if (!st.ok()) {
              auto* rej = answer.add_rejections();
              rej->set_handler_id(r.spec.id());
              rej->set_reason(std::string(st.message()));
              continue;
            }
            answer.add_accepted_handler_ids(r.spec.id());
            info.handler_ids.push_back(r.spec.id());
            bool seen = false;
            for (const auto& x : resources)
              seen |= x.FullName() == r.resource.FullName();
            if (!seen) resources.push_back(r.resource);
          }
          v1::ConnectResponse msg;
          *msg.mutable_registered() = answer;
          sink->Send(msg);
          HERALD_LOG(INFO, "engine")
              << stream_id << " (" << request.process_name() << ", " << peer
              << ") registered " << answer.accepted_handler_ids_size()
              << " handler(s), rejected " << answer.rejections_size()
              << ", credits " << request.credits();
          for (const auto& rej : answer.rejections()) {
            HERALD_LOG(WARNING, "engine")
                << stream_id << ": rejected handler '" << rej.handler_id()
                << "': " << rej.reason();
          }
          sinks_[stream_id] = sink;
          dispatcher_.AddStream(info, sink.get());
          absl::MutexLock lock(&watch_mu_);
          if (stopping_) return;
          for (const auto& r : resources) StartWatchLocked(r);
        });
    done->store(true);
  });
  registrations_.push_back({std::move(thread), std::move(done)});
}

void Engine::Outcome(const std::string& stream_id, const v1::Outcome& outcome) {
  loop_.Post([this, stream_id, outcome] {
    v1::ProtocolErrorCode code = v1::PROTOCOL_ERROR_CODE_UNSPECIFIED;
    absl::Status st = dispatcher_.OnOutcome(stream_id, outcome, &code);
    auto it = sinks_.find(stream_id);
    if (it == sinks_.end()) return;
    if (!st.ok()) {
      HERALD_LOG(WARNING, "engine")
          << stream_id << ": outcome for delivery '" << outcome.delivery_id()
          << "': " << st.message();
      SendError(it->second.get(), code, outcome.delivery_id(),
                std::string(st.message()));
      if (code != v1::PROTOCOL_ERROR_CODE_MALFORMED_JSON) return;
    }
    v1::ConnectResponse ack;
    ack.mutable_outcome_ack()->set_delivery_id(outcome.delivery_id());
    it->second->Send(ack);
  });
}

void Engine::SetCredits(const std::string& stream_id, uint32_t credits) {
  loop_.Post([this, stream_id, credits] {
    absl::Status st = dispatcher_.SetCredits(stream_id, credits);
    auto it = sinks_.find(stream_id);
    if (!st.ok() && it != sinks_.end()) {
      SendError(it->second.get(), v1::PROTOCOL_ERROR_CODE_INVALID_ARGUMENT, "",
                absl::StrCat("set_credits: ", st.message()));
    }
  });
}

void Engine::Disconnect(const std::string& stream_id) {
  loop_.Post([this, stream_id] {
    dispatcher_.RemoveStream(stream_id);
    if (sinks_.erase(stream_id)) {
      HERALD_LOG(INFO, "engine") << stream_id << " disconnected";
    }
  });
}

}  // namespace herald::engine
