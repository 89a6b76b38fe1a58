// A handler's spec as the engine keeps it: every field of herald.v1's
// HandlerSpec, with durations as absl::Duration and presence where the wire
// has it. server/session/spec_convert converts it from and to the wire,
// rejecting what cannot be represented (bad durations); the registry checks
// the rest (ValidateSpec).
#ifndef HERALD_SERVER_ENGINE_HANDLER_SPEC_H_
#define HERALD_SERVER_ENGINE_HANDLER_SPEC_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "server/engine/handler_types.h"

namespace herald::engine {

// A filter on one label or annotation.
struct MetaFilter {
  MetaMatch match = MetaMatch::kUnspecified;
  // The required value, for kEquals.
  std::string value;

  friend bool operator==(const MetaFilter& a, const MetaFilter& b) {
    return a.match == b.match && a.value == b.value;
  }
  friend bool operator!=(const MetaFilter& a, const MetaFilter& b) {
    return !(a == b);
  }
};

// A filter on a field's value.
struct ValueFilter {
  ValueMatch match = ValueMatch::kUnspecified;
  // The required value as JSON, for kEquals.
  std::string value_json;

  friend bool operator==(const ValueFilter& a, const ValueFilter& b) {
    return a.match == b.match && a.value_json == b.value_json;
  }
  friend bool operator!=(const ValueFilter& a, const ValueFilter& b) {
    return !(a == b);
  }
};

// A declarative index: by a label key or by a dotted field path (one of
// them set).
struct IndexOptions {
  std::string label;
  std::string field;

  friend bool operator==(const IndexOptions& a, const IndexOptions& b) {
    return a.label == b.label && a.field == b.field;
  }
  friend bool operator!=(const IndexOptions& a, const IndexOptions& b) {
    return !(a == b);
  }
};

// Scheduling of a timer handler.
struct TimerOptions {
  // Time between the end of one call and the start of the next; a timer
  // needs it positive.
  absl::Duration interval;
  // Delay before the first call after the object is seen.
  absl::Duration initial_delay;
  // Call only after the object's essence has not changed for this long.
  absl::optional<absl::Duration> idle;
  // Align calls to a grid of `interval`.
  bool sharp = false;

  friend bool operator==(const TimerOptions& a, const TimerOptions& b) {
    return a.interval == b.interval && a.initial_delay == b.initial_delay &&
           a.idle == b.idle && a.sharp == b.sharp;
  }
  friend bool operator!=(const TimerOptions& a, const TimerOptions& b) {
    return !(a == b);
  }
};

// Lifecycle of a daemon handler.
struct DaemonOptions {
  // Delay before the daemon starts after the object is seen.
  absl::Duration initial_delay;
  // After a stop request, how long to wait before cancelling.
  absl::Duration cancellation_backoff;
  // After cancelling, how long to wait for the outcome before releasing the
  // object anyway; unset: as long as the process stays connected.
  absl::optional<absl::Duration> cancellation_timeout;

  friend bool operator==(const DaemonOptions& a, const DaemonOptions& b) {
    return a.initial_delay == b.initial_delay &&
           a.cancellation_backoff == b.cancellation_backoff &&
           a.cancellation_timeout == b.cancellation_timeout;
  }
  friend bool operator!=(const DaemonOptions& a, const DaemonOptions& b) {
    return !(a == b);
  }
};

// What a handler is, as its process registered it (see herald.v1's
// HandlerSpec for each field's meaning).
struct HandlerSpec {
  // Unique within the operator; progress is stored under it.
  std::string id;
  // The resource as users write it; empty for activities.
  std::string resource;
  Cause cause = Cause::kUnspecified;
  // Label and annotation filters by key, all of which must match.
  std::map<std::string, MetaFilter> labels;
  std::map<std::string, MetaFilter> annotations;
  // A dotted field path ("spec.replicas"), or empty.
  std::string field;
  ValueFilter value_filter;
  ValueFilter old_filter;
  ValueFilter new_filter;
  // Attempts before the handler fails permanently; unset: no limit.
  absl::optional<uint32_t> retries;
  // Time since the first attempt before it fails permanently; unset: none.
  absl::optional<absl::Duration> timeout;
  // Delay before a retry after an error that names none; unset: 60 s.
  absl::optional<absl::Duration> backoff;
  ErrorsMode errors = ErrorsMode::kUnspecified;
  // For delete handlers: hold no finalizer.
  bool optional = false;
  // The client filters on its own and may answer skipped.
  bool has_when = false;
  // Names of the indices each delivery carries.
  std::vector<std::string> indices;
  TimerOptions timer;
  DaemonOptions daemon;
  // For index handlers computed by the sidecar.
  absl::optional<IndexOptions> index;

  friend bool operator==(const HandlerSpec& a, const HandlerSpec& b) {
    return a.id == b.id && a.resource == b.resource && a.cause == b.cause &&
           a.labels == b.labels && a.annotations == b.annotations &&
           a.field == b.field && a.value_filter == b.value_filter &&
           a.old_filter == b.old_filter && a.new_filter == b.new_filter &&
           a.retries == b.retries && a.timeout == b.timeout &&
           a.backoff == b.backoff && a.errors == b.errors &&
           a.optional == b.optional && a.has_when == b.has_when &&
           a.indices == b.indices && a.timer == b.timer &&
           a.daemon == b.daemon && a.index == b.index;
  }
  friend bool operator!=(const HandlerSpec& a, const HandlerSpec& b) {
    return !(a == b);
  }
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_HANDLER_SPEC_H_
