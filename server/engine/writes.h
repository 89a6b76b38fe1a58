// Write planning as pure functions: what one cycle writes to its object.
// A cycle ends in one merge PATCH (the handlers' patches, the progress
// annotations, the new diff-base when the cause is done, Kopf's marker) and,
// for resources with a status subresource, one PATCH of the status; the
// finalizer goes last, when the delete handlers are done.
//
// Nothing here writes or logs: the processor runs the plan.
#ifndef HERALD_SERVER_ENGINE_WRITES_H_
#define HERALD_SERVER_ENGINE_WRITES_H_

#include <cstddef>
#include <map>
#include <string>

#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "nlohmann/json.hpp"
#include "server/engine/annotation_keys.h"
#include "server/engine/progress.h"
#include "server/engine/registry.h"

namespace herald::engine {

// What a cycle leaves behind to be written.
struct CycleResult {
  Cause cause = Cause::kUnspecified;
  const std::map<std::string, ProgressRecord>* records = nullptr;
  const std::map<std::string, ProgressRecord>* child_records = nullptr;
  // The essence the cycle handled: the new diff-base once all are done.
  const nlohmann::json* new_essence = nullptr;
};

struct WritePlan {
  // The merge patch: the handlers' patches and the annotations (nulls
  // delete keys).
  nlohmann::json patch = nlohmann::json::object();
  // The handlers' status patches and results.
  nlohmann::json status_patch = nlohmann::json::object();
  // Every handler of the cause is done.
  bool all_done = false;
  // The delete handlers are done: the finalizer goes.
  bool remove_finalizer = false;
  // How the in-memory copy of a large diff-base changes.
  enum class LargeBase { kKeep, kSet, kClear };
  LargeBase large_base = LargeBase::kKeep;
  // The size of the diff-base when only its digest is stored (for a log
  // line); 0 otherwise.
  size_t digested_bytes = 0;
};

// Kopf's rules: while handlers are unfinished, their progress records are
// stored; once all are done, the records are removed and (except for a
// deletion) the new essence becomes the diff-base, as a digest when it is
// larger than `max_diffbase_bytes`. A prefix that Kopf does not know gets
// the "kopf-managed" marker with the first annotation written. `patch` and
// `status_patch` are the handlers' own.
WritePlan PlanCycleWrites(const nlohmann::json& body,
                          const AnnotationKeys& keys, const CycleResult& cycle,
                          nlohmann::json patch, nlohmann::json status_patch,
                          size_t max_diffbase_bytes);

// For a resource without a status subresource, the status patch goes into
// the main patch and `status_patch` is left empty.
void FoldStatus(bool has_status_subresource, nlohmann::json& patch,
                nlohmann::json& status_patch);

// The JSON patch that adds `finalizer` to the object's finalizers, or
// removes it, guarded by tests of the resourceVersion (and of the entry
// removed), so that a concurrent change fails it instead of being lost;
// nullopt when there is nothing to remove.
absl::optional<nlohmann::json> FinalizerPatch(const nlohmann::json& body,
                                              const std::string& finalizer,
                                              bool add, const std::string& rv);

// The earliest time an unfinished, delayed record becomes due;
// InfiniteFuture when none is.
absl::Time EarliestDelay(const std::map<std::string, ProgressRecord>& records);

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_WRITES_H_
