#include "server/engine/progress.h"

#include "gtest/gtest.h"

namespace herald::engine {
namespace {

absl::Time At(int sec, int micros = 0) {
  return absl::FromCivil(absl::CivilSecond(2026, 1, 2, 3, 4, sec),
                         absl::UTCTimeZone()) +
         absl::Microseconds(micros);
}

// Expected strings from Kopf 1.45.2's HandlerState.as_in_storage.
TEST(ProgressTest, EncodesExactlyAsKopf) {
  ProgressRecord r;
  r.started = At(5, 678901);
  r.delayed = At(5, 678901) + absl::Seconds(60);
  r.purpose = "create";
  r.retries = 1;
  r.message = "Not ready yet.";
  r.subrefs = {"b", "a"};
  EXPECT_EQ(
      EncodeProgress(r),
      R"({"started":"2026-01-02T03:04:05.678901+00:00",)"
      R"("delayed":"2026-01-02T03:05:05.678901+00:00","purpose":"create",)"
      R"("retries":1,"success":false,"failure":false,)"
      R"("message":"Not ready yet.","subrefs":["a","b"]})");
  ProgressRecord done;
  done.started = At(5);
  done.stopped = At(5);
  done.retries = 2;
  done.success = true;
  EXPECT_EQ(EncodeProgress(done),
            R"({"started":"2026-01-02T03:04:05.000000+00:00",)"
            R"("stopped":"2026-01-02T03:04:05.000000+00:00","retries":2,)"
            R"("success":true,"failure":false})");
}

TEST(ProgressTest, RoundTrips) {
  ProgressRecord r;
  r.started = At(7, 1);
  r.stopped = At(9, 999999);
  r.purpose = "update";
  r.retries = 3;
  r.failure = true;
  r.message = "boom";
  auto back = DecodeProgress(EncodeProgress(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back->started, *r.started);
  EXPECT_EQ(*back->stopped, *r.stopped);
  EXPECT_EQ(back->purpose, "update");
  EXPECT_EQ(back->retries, 3);
  EXPECT_TRUE(back->failure);
  EXPECT_TRUE(back->finished());
  EXPECT_EQ(*back->message, "boom");
}

TEST(ProgressTest, ReadsTimestampVariants) {
  const absl::Time t = At(5, 678901);
  for (const char* s :
       {"2026-01-02T03:04:05.678901+00:00", "2026-01-02T03:04:05.678901Z",
        "2026-01-02T03:04:05.678901", "2026-01-02T05:04:05.678901+02:00"}) {
    auto got = ParseKopfTime(s);
    ASSERT_TRUE(got.ok()) << s << ": " << got.status();
    EXPECT_EQ(*got, t) << s;
  }
  EXPECT_EQ(*ParseKopfTime("2026-01-02T03:04:05"), At(5));
  EXPECT_FALSE(ParseKopfTime("yesterday").ok());
}

TEST(ProgressTest, MissingFieldsTakeKopfsDefaultsAndBadInputIsAnError) {
  auto r = DecodeProgress(R"({"started":"2026-01-02T03:04:05+00:00"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->retries, 0);
  EXPECT_FALSE(r->finished());
  EXPECT_TRUE(r->due(At(0)));
  auto delayed = DecodeProgress(
      R"({"started":"2026-01-02T03:04:05+00:00","delayed":"2026-01-02T03:05:05+00:00"})");
  ASSERT_TRUE(delayed.ok());
  EXPECT_FALSE(delayed->due(At(6)));
  EXPECT_TRUE(delayed->due(At(5) + absl::Seconds(60)));
  EXPECT_FALSE(DecodeProgress("not json").ok());
  EXPECT_FALSE(DecodeProgress(R"({"started":"garbage"})").ok());
}

}  // namespace
}  // namespace herald::engine
