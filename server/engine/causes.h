// Kopf's cause detection as pure functions: from an object's body, what the
// sidecar remembers of it, and the handlers registered for its resource, to
// what the object needs next: a finalizer added or removed, nothing, or a
// cycle of one cause with its handlers and their progress so far.
//
// Nothing here delivers, writes, schedules or logs: the processor acts on
// the plan. The functions take everything they read as arguments (the time
// too), so a table of bodies and handlers tests them.
#ifndef HERALD_SERVER_ENGINE_CAUSES_H_
#define HERALD_SERVER_ENGINE_CAUSES_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "nlohmann/json.hpp"
#include "server/engine/annotation_keys.h"
#include "server/engine/essence.h"
#include "server/engine/progress.h"
#include "server/engine/registry.h"

namespace herald::engine {

// The names (after the prefix) of the diff-base annotation and, for an
// essence too large to store, of its digest.
inline constexpr char kDiffBaseKey[] = "last-handled-configuration";
inline constexpr char kDigestKey[] = "last-handled-digest";

// "sha256:<hex>" of `text`.
std::string Digest(const std::string& text);

// Kopf's purpose of a change cause ("create", "update", "delete",
// "resume"): the cause's name without its prefix; empty for other causes.
std::string PurposeOf(Cause cause);

// The object's metadata, or an empty object.
const nlohmann::json& MetaOf(const nlohmann::json& body);
// True when metadata.deletionTimestamp is set.
bool Deleting(const nlohmann::json& body);
bool HasFinalizer(const nlohmann::json& body, const std::string& finalizer);
// The first of the annotations `keys` forms for `key` on `body` that holds a
// string.
absl::optional<std::string> ReadAnnotation(const nlohmann::json& body,
                                           const AnnotationKeys& keys,
                                           const std::string& key);

// What the sidecar remembers of an object beyond its body.
struct ObjectFacts {
  // No cycle has looked at the object since the sidecar started.
  bool first_sight = false;
  // Its delete handlers are done; only the finalizer is left to remove.
  bool delete_done = false;
  // A daemon not released yet holds the object (and its finalizer).
  bool daemons_hold = false;
  // The last handled essence when it was too large for the annotation (its
  // digest is there instead); null when not known.
  const nlohmann::json* large_base = nullptr;
};

// What an object needs now. (clang-tidy's exception-escape points at the
// implicit destructor: nlohmann::json's destructor allocates a stack to
// free nested values, and an allocation failure there terminates, as it
// would in any destructor of a JSON value.)
struct CausePlan {  // NOLINT(bugprone-exception-escape)
  enum class Action {
    // Nothing: no handler matches, nothing changed that matters, or the
    // object is being deleted with nothing holding it.
    kNone,
    kAddFinalizer,
    kRemoveFinalizer,
    // Only timers and daemons match: no cause, but idle timers need to
    // know whether the essence changed (`essence` is set).
    kTrackEssence,
    // A cycle of `cause` with `handlers`.
    kCycle,
  };
  Action action = Action::kNone;
  Cause cause = Cause::kUnspecified;
  std::string purpose;
  nlohmann::json old_essence;
  nlohmann::json new_essence;
  Diff diff;
  // The handlers of the cause whose filters pass, in registration order.
  std::vector<const Handler*> handlers;
  // The essence changed (a creation, an update) or is seen for the first
  // time: idle timers count from now.
  bool essence_touched = false;
};

// Kopf's detection: deletion (when the finalizer is there), creation (no
// diff-base), update (the essence differs from the diff-base), resume (the
// first sight of an unchanged object); the finalizer added when a matching
// handler needs one and removed when none does.
CausePlan DetectCause(const nlohmann::json& body,
                      const std::vector<const Handler*>& handlers,
                      const ObjectFacts& facts, const AnnotationKeys& keys,
                      const std::string& finalizer);

// The progress of a cycle's handlers as the object's annotations hold it,
// and which of them are due at `now`.
struct ProgressPlan {
  // By handler id; handlers without a record get one with the purpose.
  std::map<std::string, ProgressRecord> records;
  // Sub-handlers' records ("parent/child"), by id.
  std::map<std::string, ProgressRecord> child_records;
  // Handlers to deliver now, in order.
  std::vector<const Handler*> due;
  // The earliest time a delayed handler becomes due; InfiniteFuture when
  // none is delayed.
  absl::Time wake = absl::InfiniteFuture();
};
ProgressPlan PlanProgress(const nlohmann::json& body,
                          const std::vector<const Handler*>& handlers,
                          const std::string& purpose,
                          const AnnotationKeys& keys, absl::Time now);

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_CAUSES_H_
