#include "server/session/spec_convert.h"

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"

namespace herald::session {
namespace {

using google::protobuf::util::TimeUtil;

// The engine's enums carry herald.v1's numbers.
static_assert(static_cast<int>(engine::Cause::kProbe) == v1::CAUSE_PROBE);
static_assert(engine::kCauseCount == v1::Cause_ARRAYSIZE);
static_assert(static_cast<int>(engine::ErrorsMode::kIgnored) ==
              v1::ERRORS_MODE_IGNORED);
static_assert(v1::ErrorsMode_ARRAYSIZE == 4);
static_assert(static_cast<int>(engine::MetaMatch::kAbsent) ==
              v1::META_MATCH_ABSENT);
static_assert(v1::MetaMatch_ARRAYSIZE == 4);
static_assert(static_cast<int>(engine::ValueMatch::kAbsent) ==
              v1::VALUE_MATCH_ABSENT);
static_assert(v1::ValueMatch_ARRAYSIZE == 4);

// A valid Duration (seconds and nanos in range, of one sign) that is not
// negative, as absl::Duration; otherwise an error naming `field`.
absl::StatusOr<absl::Duration> FromWire(const google::protobuf::Duration& d,
                                        const char* field) {
  const int64_t seconds = d.seconds();
  const int32_t nanos = d.nanos();
  if (seconds < TimeUtil::kDurationMinSeconds ||
      seconds > TimeUtil::kDurationMaxSeconds || nanos <= -1000000000 ||
      nanos >= 1000000000 || (seconds > 0 && nanos < 0) ||
      (seconds < 0 && nanos > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": not a valid duration (seconds ", seconds,
                     ", nanos ", nanos, ")"));
  }
  const absl::Duration out = absl::Seconds(seconds) + absl::Nanoseconds(nanos);
  if (out < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": must not be negative (", absl::FormatDuration(out), ")"));
  }
  return out;
}

google::protobuf::Duration ToWire(absl::Duration d) {
  google::protobuf::Duration out;
  const int64_t nanos = absl::ToInt64Nanoseconds(d);
  out.set_seconds(nanos / 1000000000);
  out.set_nanos(static_cast<int32_t>(nanos % 1000000000));
  return out;
}

std::map<std::string, engine::MetaFilter> MetaFromWire(
    const google::protobuf::Map<std::string, v1::MetaFilter>& wire) {
  std::map<std::string, engine::MetaFilter> out;
  for (const auto& [key, f] : wire) {
    out[key] = {static_cast<engine::MetaMatch>(f.match()), f.value()};
  }
  return out;
}

void MetaToWire(const std::map<std::string, engine::MetaFilter>& filters,
                google::protobuf::Map<std::string, v1::MetaFilter>* wire) {
  for (const auto& [key, f] : filters) {
    v1::MetaFilter& w = (*wire)[key];
    w.set_match(static_cast<v1::MetaMatch>(f.match));
    w.set_value(f.value);
  }
}

engine::ValueFilter ValueFromWire(const v1::ValueFilter& wire) {
  return {static_cast<engine::ValueMatch>(wire.match()), wire.value_json()};
}

void ValueToWire(const engine::ValueFilter& f, v1::ValueFilter* wire) {
  wire->set_match(static_cast<v1::ValueMatch>(f.match));
  wire->set_value_json(f.value_json);
}

}  // namespace

absl::StatusOr<engine::HandlerSpec> SpecFromWire(const v1::HandlerSpec& wire) {
  engine::HandlerSpec s;
  s.id = wire.id();
  s.resource = wire.resource();
  s.cause = static_cast<engine::Cause>(wire.cause());
  s.labels = MetaFromWire(wire.labels());
  s.annotations = MetaFromWire(wire.annotations());
  s.field = wire.field();
  s.value_filter = ValueFromWire(wire.value_filter());
  s.old_filter = ValueFromWire(wire.old_filter());
  s.new_filter = ValueFromWire(wire.new_filter());
  if (wire.has_retries()) s.retries = wire.retries();
  // Each duration in turn; the first bad one is the error.
  struct Field {
    bool present;
    const google::protobuf::Duration& wire;
    const char* name;
    absl::Duration* out;
    absl::optional<absl::Duration>* optional_out;
  };
  const Field fields[] = {
      {wire.has_timeout(), wire.timeout(), "timeout", nullptr, &s.timeout},
      {wire.has_backoff(), wire.backoff(), "backoff", nullptr, &s.backoff},
      {wire.timer().has_interval(), wire.timer().interval(), "timer.interval",
       &s.timer.interval, nullptr},
      {wire.timer().has_initial_delay(), wire.timer().initial_delay(),
       "timer.initial_delay", &s.timer.initial_delay, nullptr},
      {wire.timer().has_idle(), wire.timer().idle(), "timer.idle", nullptr,
       &s.timer.idle},
      {wire.daemon().has_initial_delay(), wire.daemon().initial_delay(),
       "daemon.initial_delay", &s.daemon.initial_delay, nullptr},
      {wire.daemon().has_cancellation_backoff(),
       wire.daemon().cancellation_backoff(), "daemon.cancellation_backoff",
       &s.daemon.cancellation_backoff, nullptr},
      {wire.daemon().has_cancellation_timeout(),
       wire.daemon().cancellation_timeout(), "daemon.cancellation_timeout",
       nullptr, &s.daemon.cancellation_timeout},
  };
  for (const Field& f : fields) {
    if (!f.present) continue;
    absl::StatusOr<absl::Duration> d = FromWire(f.wire, f.name);
    if (!d.ok()) return d.status();
    if (f.out != nullptr) *f.out = *d;
    if (f.optional_out != nullptr) *f.optional_out = *d;
  }
  s.errors = static_cast<engine::ErrorsMode>(wire.errors());
  s.optional = wire.optional();
  s.has_when = wire.has_when();
  s.indices.assign(wire.indices().begin(), wire.indices().end());
  s.timer.sharp = wire.timer().sharp();
  if (wire.has_index()) {
    s.index = engine::IndexOptions{wire.index().label(), wire.index().field()};
  }
  return s;
}

v1::HandlerSpec SpecToWire(const engine::HandlerSpec& s) {
  v1::HandlerSpec w;
  w.set_id(s.id);
  w.set_resource(s.resource);
  w.set_cause(static_cast<v1::Cause>(s.cause));
  MetaToWire(s.labels, w.mutable_labels());
  MetaToWire(s.annotations, w.mutable_annotations());
  w.set_field(s.field);
  if (s.value_filter != engine::ValueFilter()) {
    ValueToWire(s.value_filter, w.mutable_value_filter());
  }
  if (s.old_filter != engine::ValueFilter()) {
    ValueToWire(s.old_filter, w.mutable_old_filter());
  }
  if (s.new_filter != engine::ValueFilter()) {
    ValueToWire(s.new_filter, w.mutable_new_filter());
  }
  if (s.retries) w.set_retries(*s.retries);
  if (s.timeout) *w.mutable_timeout() = ToWire(*s.timeout);
  if (s.backoff) *w.mutable_backoff() = ToWire(*s.backoff);
  w.set_errors(static_cast<v1::ErrorsMode>(s.errors));
  w.set_optional(s.optional);
  w.set_has_when(s.has_when);
  for (const auto& name : s.indices) w.add_indices(name);
  if (s.timer != engine::TimerOptions()) {
    v1::TimerOptions* t = w.mutable_timer();
    if (s.timer.interval != absl::ZeroDuration()) {
      *t->mutable_interval() = ToWire(s.timer.interval);
    }
    if (s.timer.initial_delay != absl::ZeroDuration()) {
      *t->mutable_initial_delay() = ToWire(s.timer.initial_delay);
    }
    if (s.timer.idle) *t->mutable_idle() = ToWire(*s.timer.idle);
    t->set_sharp(s.timer.sharp);
  }
  if (s.daemon != engine::DaemonOptions()) {
    v1::DaemonOptions* d = w.mutable_daemon();
    if (s.daemon.initial_delay != absl::ZeroDuration()) {
      *d->mutable_initial_delay() = ToWire(s.daemon.initial_delay);
    }
    if (s.daemon.cancellation_backoff != absl::ZeroDuration()) {
      *d->mutable_cancellation_backoff() =
          ToWire(s.daemon.cancellation_backoff);
    }
    if (s.daemon.cancellation_timeout) {
      *d->mutable_cancellation_timeout() =
          ToWire(*s.daemon.cancellation_timeout);
    }
  }
  if (s.index) {
    // IndexOptions is a oneof: the label wins when both are set.
    v1::IndexOptions* index = w.mutable_index();
    if (!s.index->label.empty()) {
      index->set_label(s.index->label);
    } else if (!s.index->field.empty()) {
      index->set_field(s.index->field);
    }
  }
  return w;
}

}  // namespace herald::session
