#include "server/engine/object_writer.h"

#include <utility>

#include "boost/asio/post.hpp"
#include "server/runtime/logging.h"

namespace herald::engine {

ApiObjectWriter::ApiObjectWriter(kube::ApiClient* api, runtime::EventLoop* loop,
                                 int threads)
    : api_(api), loop_(loop), pool_(threads) {}

// join() without stop(): the pool runs what is queued, then its threads end.
ApiObjectWriter::~ApiObjectWriter() { pool_.join(); }

void ApiObjectWriter::Enqueue(std::function<void()> job) {
  boost::asio::post(pool_, std::move(job));
}

void ApiObjectWriter::Patch(const kube::ResourceInfo& resource,
                            const cache::ObjectKey& key, kube::PatchType type,
                            std::string patch, bool status_subresource,
                            WriteDone done) {
  std::string path =
      resource.ObjectPath(key.ns, key.name, status_subresource ? "status" : "");
  Enqueue([this, path = std::move(path), type, patch = std::move(patch),
           done = std::move(done)]() mutable {
    auto result = api_->Patch(path, type, patch);
    loop_->Post([done = std::move(done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  });
}

void ApiObjectWriter::PostEvent(kube::InvolvedObject object,
                                kube::EventKind kind, std::string reason,
                                std::string message) {
  Enqueue([this, object = std::move(object), kind, reason = std::move(reason),
           message = std::move(message)] {
    absl::Status st = kube::PostEvent(*api_, object, kind, reason, message);
    if (!st.ok()) {
      HERALD_LOG(WARNING, "engine").With({"", object.ns, object.name})
          << "posting an Event about the " << object.kind << " failed: " << st;
    }
  });
}

}  // namespace herald::engine
