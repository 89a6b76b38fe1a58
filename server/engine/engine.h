// The engine as one component: its loop thread, the registry, dispatcher,
// processor and writer, and the resource watches that registrations start.
// The gRPC layer calls it from its own threads; everything it owns runs on
// the loop.
#ifndef HERALD_SERVER_ENGINE_ENGINE_H_
#define HERALD_SERVER_ENGINE_ENGINE_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "herald/v1/handler.pb.h"
#include "server/engine/dispatcher.h"
#include "server/engine/object_writer.h"
#include "server/engine/processor.h"
#include "server/engine/registry.h"
#include "server/kube/api_client.h"
#include "server/kube/discovery.h"
#include "server/kube/namespace_scope.h"
#include "server/kube/resource_watch.h"
#include "server/runtime/event_loop.h"

namespace herald::engine {

class Engine {
 public:
  struct Options {
    EngineOptions engine;
    kube::NamespaceScope scope;
    kube::WatchOptions watch;
    // Also told about every watch event (for logging); may be null.
    kube::WatchHandler* observer = nullptr;
    uint64_t max_message_bytes = 16 << 20;
    std::string version = "0.1.0";
  };

  Engine(kube::ApiClient* api, kube::Discovery* discovery, Options options);
  ~Engine();

  void Start();
  // Stops the watches, then the loop.
  void Stop();

  // Watches a resource without handlers (yet), e.g. from the command line.
  void Watch(const std::string& resource_name);

  // From the gRPC layer (any thread). Register answers through `sink`
  // (Registered, or a ProtocolError) once its resources are resolved.
  std::string NewStreamId();
  void Register(const std::string& stream_id, const v1::Register& request,
                const std::string& peer, std::shared_ptr<StreamSink> sink);
  void Outcome(const std::string& stream_id, const v1::Outcome& outcome);
  void SetCredits(const std::string& stream_id, uint32_t credits);
  void Disconnect(const std::string& stream_id);

  uint64_t max_message_bytes() const { return options_.max_message_bytes; }

  // What inspection reads, on the loop.
  struct View {
    const Registry& registry;
    const Dispatcher& dispatcher;
    const Processor& processor;
    std::vector<kube::ResourceWatch*> watches;
    absl::Time started;
    const Options& options;
    std::string api_server;
  };
  // Runs `fn` on the engine loop with a view of the engine's state.
  void Inspect(std::function<void(const View&)> fn);
  void set_api_server(std::string s) { api_server_ = std::move(s); }

 private:
  class Tee;
  void SendError(StreamSink* sink, v1::ProtocolErrorCode code,
                 const std::string& delivery_id, const std::string& message);
  // On the loop.
  void StartWatchLocked(const kube::ResourceInfo& resource)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(watch_mu_);

  kube::ApiClient* api_;
  kube::Discovery* discovery_;
  const Options options_;
  runtime::EventLoop loop_;
  std::thread loop_thread_;
  Registry registry_;
  Dispatcher dispatcher_;
  std::unique_ptr<ApiObjectWriter> writer_;
  std::unique_ptr<Processor> processor_;
  std::unique_ptr<Tee> tee_;
  std::atomic<uint64_t> next_stream_{1};
  const absl::Time started_ = absl::Now();
  std::string api_server_;
  // Loop-owned: the sinks of registered streams.
  std::map<std::string, std::shared_ptr<StreamSink>> sinks_;

  absl::Mutex watch_mu_;
  std::vector<std::unique_ptr<kube::ResourceWatch>> watches_
      ABSL_GUARDED_BY(watch_mu_);
  std::vector<std::string> watched_names_ ABSL_GUARDED_BY(watch_mu_);
  // Registration threads, with a flag each sets when it is done; finished
  // ones are joined at the next registration.
  struct Registration {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Registration> registrations_ ABSL_GUARDED_BY(watch_mu_);
  bool stopping_ ABSL_GUARDED_BY(watch_mu_) = false;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_ENGINE_H_
