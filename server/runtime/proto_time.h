// Conversions between Abseil's time types and protobuf's well-known ones.
#ifndef HERALD_SERVER_RUNTIME_PROTO_TIME_H_
#define HERALD_SERVER_RUNTIME_PROTO_TIME_H_

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"

namespace herald::runtime {

// Protobuf's own conversions keep nanos in [0, 1e9) for times before 1970,
// as a valid Timestamp must have them.
inline google::protobuf::Timestamp ToProtoTime(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      absl::ToUnixNanos(t));
}

inline google::protobuf::Duration ToProtoDuration(absl::Duration d) {
  return google::protobuf::util::TimeUtil::NanosecondsToDuration(
      absl::ToInt64Nanoseconds(d));
}

inline absl::Duration FromProtoDuration(const google::protobuf::Duration& d) {
  return absl::Nanoseconds(
      google::protobuf::util::TimeUtil::DurationToNanoseconds(d));
}

}  // namespace herald::runtime

#endif  // HERALD_SERVER_RUNTIME_PROTO_TIME_H_
