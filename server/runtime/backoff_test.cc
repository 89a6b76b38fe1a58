#include "server/runtime/backoff.h"

#include <vector>

#include "gtest/gtest.h"

namespace herald::runtime {
namespace {

TEST(BackoffTest, FollowsKopfsSequenceAndCaps) {
  Backoff b;
  std::vector<int64_t> got;
  for (int i = 0; i < 10; ++i) got.push_back(absl::ToInt64Seconds(b.Next()));
  EXPECT_EQ(got, (std::vector<int64_t>{1, 1, 2, 3, 5, 8, 13, 21, 21, 21}));
  EXPECT_EQ(b.attempts(), 10);
}

TEST(BackoffTest, ResetStartsOver) {
  Backoff b;
  b.Next();
  b.Next();
  b.Next();
  b.Reset();
  EXPECT_EQ(b.Next(), absl::Seconds(1));
  EXPECT_EQ(b.attempts(), 1);
}

TEST(BackoffTest, JitterStaysWithinBounds) {
  Backoff::Options o;
  o.unit = absl::Milliseconds(100);
  o.max = absl::Seconds(10);
  o.jitter = 0.2;
  o.seed = 42;
  Backoff b(o);
  Backoff plain(Backoff::Options{absl::Milliseconds(100), absl::Seconds(10)});
  bool differs = false;
  for (int i = 0; i < 20; ++i) {
    absl::Duration base = plain.Next();
    absl::Duration d = b.Next();
    EXPECT_GE(d, base * 0.8);
    EXPECT_LE(d, base * 1.2);
    differs |= d != base;
  }
  EXPECT_TRUE(differs);
}

TEST(BackoffTest, JitterIsRepeatableForASeed) {
  Backoff::Options o;
  o.jitter = 0.5;
  o.seed = 7;
  Backoff a(o), b(o);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.Next(), b.Next());
}

// Without a seed each Backoff draws its own jitter: retry loops that start
// together do not stay in step.
TEST(BackoffTest, UnseededJitterDiffersBetweenBackoffs) {
  Backoff::Options o;
  o.jitter = 0.5;
  Backoff a(o), b(o);
  bool differs = false;
  for (int i = 0; i < 10; ++i) differs |= a.Next() != b.Next();
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace herald::runtime
