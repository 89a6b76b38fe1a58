#include "server/app/version.h"

#include "gtest/gtest.h"
#include "server/app/build_stamp.h"

namespace herald::app {
namespace {

TEST(VersionTest, NamesVersionCommitAndBuild) {
  std::string v = VersionString();
  EXPECT_EQ(v.rfind(std::string("herald ") + HERALD_BUILD_VERSION + " (", 0),
            0u)
      << v;
  std::string commit = HERALD_BUILD_COMMIT;
  if (commit.empty()) {
    EXPECT_NE(v.find("(commit unknown (unstamped build), "), std::string::npos)
        << v;
  } else {
    EXPECT_NE(v.find("(commit " + commit + ", "), std::string::npos) << v;
  }
  EXPECT_NE(v.find(OptimizedBuild() ? ", optimized build)" : ", debug build)"),
            std::string::npos)
      << v;
}

TEST(VersionTest, VersionIsTheVersionFile) {
  std::string version = HERALD_BUILD_VERSION;
  ASSERT_FALSE(version.empty());
  EXPECT_EQ(version.find_first_not_of("0123456789."), std::string::npos)
      << version;
}

}  // namespace
}  // namespace herald::app
