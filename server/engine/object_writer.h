// Writes to the API server on behalf of the engine, off the engine loop:
// requests run on a small pool of threads (a boost::asio::thread_pool) and
// their results come back as tasks posted to the loop.
#ifndef HERALD_SERVER_ENGINE_OBJECT_WRITER_H_
#define HERALD_SERVER_ENGINE_OBJECT_WRITER_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "boost/asio/thread_pool.hpp"
#include "server/cache/object_store.h"
#include "server/kube/api_client.h"
#include "server/kube/discovery.h"
#include "server/kube/events.h"
#include "server/runtime/event_loop.h"
#include "server/runtime/logging.h"

namespace herald::engine {

// The object as log lines name it (HERALD_LOG(...).With(LogRef(...))).
inline runtime::ObjectRef LogRef(const kube::ResourceInfo& resource,
                                 const cache::ObjectKey& key) {
  return {resource.FullName(), key.ns, key.name};
}

using WriteDone = std::function<void(absl::StatusOr<std::string> body)>;

class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  // PATCHes the object (or its status subresource); `done` runs on the loop
  // with the object as the server returned it.
  virtual void Patch(const kube::ResourceInfo& resource,
                     const cache::ObjectKey& key, kube::PatchType type,
                     std::string patch, bool status_subresource,
                     WriteDone done) = 0;
  // Posts an Event; failures are logged, never retried past the API client.
  virtual void PostEvent(kube::InvolvedObject object, kube::EventKind kind,
                         std::string reason, std::string message) = 0;
};

// The real writer over an ApiClient. Thread-safe.
class ApiObjectWriter : public ObjectWriter {
 public:
  ApiObjectWriter(kube::ApiClient* api, runtime::EventLoop* loop,
                  int threads = 4);
  // Waits for the writes already queued (they run, and post their results to
  // the loop); nothing runs on the pool after it returns.
  ~ApiObjectWriter() override;

  void Patch(const kube::ResourceInfo& resource, const cache::ObjectKey& key,
             kube::PatchType type, std::string patch, bool status_subresource,
             WriteDone done) override;
  void PostEvent(kube::InvolvedObject object, kube::EventKind kind,
                 std::string reason, std::string message) override;

 private:
  void Enqueue(std::function<void()> job);

  kube::ApiClient* api_;
  runtime::EventLoop* loop_;
  boost::asio::thread_pool pool_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_OBJECT_WRITER_H_
