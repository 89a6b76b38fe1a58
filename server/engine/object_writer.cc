#include "server/engine/object_writer.h"

#include "server/runtime/logging.h"

namespace herald::engine {

ApiObjectWriter::ApiObjectWriter(kube::ApiClient* api, runtime::EventLoop* loop,
                                 int threads)
    : api_(api), loop_(loop) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

ApiObjectWriter::~ApiObjectWriter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (auto& t : threads_) t.join();
}

void ApiObjectWriter::Enqueue(std::function<void()> job) {
  absl::MutexLock lock(&mu_);
  jobs_.push_back(std::move(job));
}

void ApiObjectWriter::Work() {
  for (;;) {
    std::function<void()> job;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !jobs_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.erase(jobs_.begin());
    }
    job();
  }
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
      HERALD_LOG(WARNING, "engine")
          << "posting an Event about " << object.name << " failed: " << st;
    }
  });
}

}  // namespace herald::engine
