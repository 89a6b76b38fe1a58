#include "server/runtime/logging.h"

#include <string>

#include "absl/flags/marshalling.h"
#include "gtest/gtest.h"

namespace herald::runtime {
namespace {

TEST(SeverityFlagTest, ParsesEveryLevelAndUnparsesItBack) {
  for (Severity s : {Severity::kDebug, Severity::kInfo, Severity::kWarning,
                     Severity::kError}) {
    Severity parsed = Severity::kInfo;
    std::string error;
    const std::string text = absl::UnparseFlag(s);
    ASSERT_TRUE(absl::ParseFlag(text, &parsed, &error))
        << text << ": " << error;
    EXPECT_EQ(parsed, s) << text;
  }
  EXPECT_EQ(absl::UnparseFlag(Severity::kWarning), "warning");
}

TEST(SeverityFlagTest, RefusesOtherWordsSayingWhichAreAccepted) {
  for (const char* text : {"loud", "INFO", "", "warn", " info"}) {
    Severity parsed = Severity::kError;
    std::string error;
    EXPECT_FALSE(absl::ParseFlag(text, &parsed, &error)) << text;
    EXPECT_EQ(error, "not debug, info, warning or error") << text;
    EXPECT_EQ(parsed, Severity::kError) << "left unchanged: " << text;
  }
}

}  // namespace
}  // namespace herald::runtime
