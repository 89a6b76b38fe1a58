// Runs one phase's PATCHes in order, off the engine's decisions: the merge
// PATCH of the object, then the merge PATCH of its status subresource, and
// reports once, on the loop, how it went. It keeps no state of the object
// and decides nothing about it: the processor reads the answer.
#ifndef HERALD_SERVER_ENGINE_WRITE_RUN_H_
#define HERALD_SERVER_ENGINE_WRITE_RUN_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "server/engine/object_writer.h"

namespace herald::engine {

struct WriteAnswer {
  enum class Kind {
    // Written (a failed status PATCH is logged and does not stop the run:
    // the status is the handlers' results, retried with the next write).
    kApplied,
    // The object is gone (404).
    kGone,
    // The API server refused the merge PATCH as invalid (400 or 422).
    kRejected,
    // Any other failure of the merge PATCH, after the API client's retries.
    kFailed,
  };
  Kind kind = Kind::kApplied;
  absl::Status status;
  // The objects the server answered with, in order of the writes.
  std::vector<std::string> bodies;
};

using WriteAnswered = std::function<void(WriteAnswer)>;

// Writes `patch` (when not empty), then `status_patch` to the status
// subresource (when not empty; the caller folds it into `patch` for a
// resource without one). `done` runs on the loop, once.
void RunPatches(ObjectWriter* writer,
                std::shared_ptr<const kube::ResourceInfo> resource,
                const cache::ObjectKey& key, const nlohmann::json& patch,
                const nlohmann::json& status_patch, WriteAnswered done);

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_WRITE_RUN_H_
