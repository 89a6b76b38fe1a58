#ifndef HERALD_SERVER_APP_VERSION_H_
#define HERALD_SERVER_APP_VERSION_H_

#include <string>

namespace herald::app {

// What `herald --version` prints, one line:
//   herald 0.1.0 (commit 046d0b0dd9d8, optimized build)
// The version is the repository's VERSION file. The commit is stamped by
// `bazel build --config=release` (scripts/workspace-status); other builds say
// "commit unknown (unstamped build)". "optimized build" means compiled with
// optimization and without assertions (`-c opt`); anything else is a "debug
// build".
std::string VersionString();

// Whether this binary was compiled with optimization and NDEBUG.
bool OptimizedBuild();

}  // namespace herald::app

#endif  // HERALD_SERVER_APP_VERSION_H_
