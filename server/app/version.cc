#include "server/app/version.h"

#include "absl/strings/str_cat.h"
#include "server/app/build_stamp.h"

namespace herald::app {

bool OptimizedBuild() {
#if defined(NDEBUG) && defined(__OPTIMIZE__)
  return true;
#else
  return false;
#endif
}

std::string VersionString() {
  std::string commit = HERALD_BUILD_COMMIT;
  std::string where = commit.empty()
                          ? std::string("commit unknown (unstamped build)")
                          : absl::StrCat("commit ", commit);
  return absl::StrCat("herald ", HERALD_BUILD_VERSION, " (", where, ", ",
                      OptimizedBuild() ? "optimized build" : "debug build",
                      ")");
}

}  // namespace herald::app
