#include "server/engine/handler_types.h"

namespace herald::engine {

absl::string_view CauseName(Cause cause) {
  switch (cause) {
    case Cause::kUnspecified:
      break;
    case Cause::kCreate:
      return "create";
    case Cause::kUpdate:
      return "update";
    case Cause::kDelete:
      return "delete";
    case Cause::kResume:
      return "resume";
    case Cause::kField:
      return "field";
    case Cause::kEvent:
      return "event";
    case Cause::kTimer:
      return "timer";
    case Cause::kDaemon:
      return "daemon";
    case Cause::kIndex:
      return "index";
    case Cause::kStartup:
      return "startup";
    case Cause::kCleanup:
      return "cleanup";
    case Cause::kProbe:
      return "probe";
  }
  return "unspecified";
}

absl::string_view OutcomeStatusName(OutcomeStatus status) {
  switch (status) {
    case OutcomeStatus::kUnspecified:
      break;
    case OutcomeStatus::kSuccess:
      return "success";
    case OutcomeStatus::kTemporaryError:
      return "temporary_error";
    case OutcomeStatus::kPermanentError:
      return "permanent_error";
    case OutcomeStatus::kUnexpectedError:
      return "unexpected_error";
    case OutcomeStatus::kSkipped:
      return "skipped";
  }
  return "unspecified";
}

}  // namespace herald::engine
