// One handler's progress on an object's current change, stored as compact
// JSON in an annotation exactly as Kopf stores it:
//   {"started":"2026-01-02T03:04:05.678901+00:00","delayed":"...",
//    "purpose":"create","retries":1,"success":false,"failure":false,
//    "message":"Not ready yet."}
// Keys in that order, nulls dropped; timestamps in UTC with microseconds.
#ifndef HERALD_SERVER_ENGINE_PROGRESS_H_
#define HERALD_SERVER_ENGINE_PROGRESS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"

namespace herald::engine {

struct ProgressRecord {
  absl::optional<absl::Time> started;
  absl::optional<absl::Time> stopped;
  absl::optional<absl::Time> delayed;
  // "create", "update", "delete", "resume"; empty when unknown.
  std::string purpose;
  int retries = 0;
  bool success = false;
  bool failure = false;
  absl::optional<std::string> message;
  // Ids of sub-handlers, sorted.
  std::vector<std::string> subrefs;

  bool finished() const { return success || failure; }
  // Due for another attempt at `now` (not finished, not delayed past now).
  bool due(absl::Time now) const {
    return !finished() && (!delayed || *delayed <= now);
  }
};

std::string EncodeProgress(const ProgressRecord& record);
absl::StatusOr<ProgressRecord> DecodeProgress(absl::string_view json);

// "2026-01-02T03:04:05.678901+00:00", as Python's isoformat with
// microseconds.
std::string FormatKopfTime(absl::Time t);
// Reads Kopf's timestamps and their variants: "+00:00" or another offset,
// "Z", or none (UTC); with or without fractional seconds.
absl::StatusOr<absl::Time> ParseKopfTime(absl::string_view s);

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_PROGRESS_H_
