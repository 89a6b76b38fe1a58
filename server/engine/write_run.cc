#include "server/engine/write_run.h"

#include <memory>
#include <utility>

#include "server/runtime/logging.h"

namespace herald::engine {

using nlohmann::json;

namespace {

// The status PATCH, then the answer.
void PatchStatus(ObjectWriter* writer, const kube::ResourceInfo& resource,
                 const cache::ObjectKey& key, const json& status_patch,
                 WriteAnswer answer, WriteAnswered done) {
  if (status_patch.empty()) {
    done(std::move(answer));
    return;
  }
  writer->Patch(
      resource, key, kube::PatchType::kMerge,
      json{{"status", status_patch}}.dump(), /*status_subresource=*/true,
      [ref = LogRef(resource, key), answer = std::move(answer),
       done = std::move(done)](absl::StatusOr<std::string> r) mutable {
        if (r.ok()) {
          answer.bodies.push_back(std::move(*r));
        } else {
          HERALD_LOG(WARNING, "engine").With(ref)
              << "status patch failed: " << r.status();
        }
        done(std::move(answer));
      });
}

}  // namespace

void RunPatches(ObjectWriter* writer,
                std::shared_ptr<const kube::ResourceInfo> resource,
                const cache::ObjectKey& key, const json& patch,
                const json& status_patch, WriteAnswered done) {
  if (patch.empty()) {
    PatchStatus(writer, *resource, key, status_patch, WriteAnswer(),
                std::move(done));
    return;
  }
  const kube::ResourceInfo& info = *resource;
  writer->Patch(
      info, key, kube::PatchType::kMerge, patch.dump(), false,
      [writer, shared = std::move(resource), key, status_patch,
       done = std::move(done)](absl::StatusOr<std::string> r) mutable {
        WriteAnswer answer;
        if (r.ok()) {
          answer.bodies.push_back(std::move(*r));
          PatchStatus(writer, *shared, key, status_patch, std::move(answer),
                      std::move(done));
          return;
        }
        const int http = kube::HttpStatusOf(r.status());
        answer.kind = http == 404 ? WriteAnswer::Kind::kGone
                      : http == 400 || http == 422
                          ? WriteAnswer::Kind::kRejected
                          : WriteAnswer::Kind::kFailed;
        answer.status = r.status();
        done(std::move(answer));
      });
}

}  // namespace herald::engine
