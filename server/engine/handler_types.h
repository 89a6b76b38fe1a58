// The engine's own names for what the handler protocol talks about: why a
// handler is called, how it answered, what an unexpected error means, why a
// daemon is stopped, and the kinds of Events a handler posts. They carry the
// same numbers as their herald.v1 counterparts, so that the session layer
// (server/session) converts them with a checked cast; nothing in the engine
// depends on the wire types.
#ifndef HERALD_SERVER_ENGINE_HANDLER_TYPES_H_
#define HERALD_SERVER_ENGINE_HANDLER_TYPES_H_

#include "absl/strings/string_view.h"

namespace herald::engine {

// Kopf's reasons and handler kinds.
enum class Cause {
  kUnspecified = 0,
  kCreate = 1,
  kUpdate = 2,
  kDelete = 3,
  kResume = 4,
  kField = 5,
  kEvent = 6,
  kTimer = 7,
  kDaemon = 8,
  kIndex = 9,
  kStartup = 10,
  kCleanup = 11,
  kProbe = 12,
};
inline constexpr int kCauseCount = 13;

// A handler's answer.
enum class OutcomeStatus {
  kUnspecified = 0,
  kSuccess = 1,
  kTemporaryError = 2,
  kPermanentError = 3,
  kUnexpectedError = 4,
  kSkipped = 5,
};
inline constexpr int kOutcomeStatusCount = 6;

// What an unexpected error means (Kopf's `errors=`).
enum class ErrorsMode {
  kUnspecified = 0,
  kTemporary = 1,
  kPermanent = 2,
  kIgnored = 3,
};

// Why a long-running delivery is asked to stop.
enum class StopReason {
  kUnspecified = 0,
  kObjectDeleted = 1,
  kShutdown = 2,
  kTimeout = 3,
  kFilterMismatch = 4,
};

// A Kubernetes Event's type.
enum class EventType {
  kUnspecified = 0,
  kNormal = 1,
  kWarning = 2,
};

// Label and annotation filters.
enum class MetaMatch {
  kUnspecified = 0,
  kEquals = 1,
  kPresent = 2,
  kAbsent = 3,
};

// Field value filters.
enum class ValueMatch {
  kUnspecified = 0,
  kEquals = 1,
  kPresent = 2,
  kAbsent = 3,
};

// Lower-case names, as logs, progress purposes and inspection show them:
// "create", "temporary_error", ...
absl::string_view CauseName(Cause cause);
absl::string_view OutcomeStatusName(OutcomeStatus status);

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_HANDLER_TYPES_H_
