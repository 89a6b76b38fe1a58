#include "server/runtime/proto_time.h"

#include "gtest/gtest.h"

namespace herald::runtime {
namespace {

TEST(ProtoTimeTest, TimesBefore1970AreValidTimestamps) {
  const absl::Time t = absl::FromUnixNanos(-1500000000);  // -1.5 s.
  const google::protobuf::Timestamp ts = ToProtoTime(t);
  EXPECT_EQ(ts.seconds(), -2);
  EXPECT_EQ(ts.nanos(), 500000000);
  EXPECT_EQ(ToProtoTime(absl::FromUnixSeconds(1700000000)).seconds(),
            1700000000);
}

TEST(ProtoTimeTest, DurationsRoundTrip) {
  for (absl::Duration d : {absl::Milliseconds(1500), absl::Milliseconds(-1500),
                           absl::ZeroDuration(), absl::Hours(30)}) {
    EXPECT_EQ(FromProtoDuration(ToProtoDuration(d)), d);
  }
  const google::protobuf::Duration neg =
      ToProtoDuration(absl::Milliseconds(-1500));
  EXPECT_EQ(neg.seconds(), -1);
  EXPECT_EQ(neg.nanos(), -500000000);  // Same sign, as Duration requires.
}

}  // namespace
}  // namespace herald::runtime
