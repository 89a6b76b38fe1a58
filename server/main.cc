// The Herald sidecar.
//
//   herald --socket=/run/herald/herald.sock --namespaces='team-*,!team-x'
//
// Handler processes connect to the socket (or --listen), register handlers,
// and the resources they name are watched from then on. The flags are in
// server/app/flags.cc; the sidecar is assembled by herald::app::App.
//
// Exit codes: 0 after SIGINT or SIGTERM; 1 after a fatal error (a startup
// handler failed for good); 2 for a bad flag or a failed start, with one line
// "herald: <what, where, why>" on stderr (an error line of logger "main" with
// --log_format=json). `herald --version` prints the
// version, the commit and whether this is an optimized build, and exits 0.

#include <string>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/synchronization/mutex.h"
#include "server/app/app.h"
#include "server/app/flags.h"
#include "server/app/version.h"
#include "server/runtime/logging.h"

int main(int argc, char** argv) {
#ifdef NDEBUG
  // Debian's Abseil is built without NDEBUG, so every Mutex lock would run
  // its deadlock detector (about 3% of the sidecar's CPU under load).
  // Optimized builds turn it off, as Abseil's own optimized builds do;
  // tests run the debug build, with it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  absl::SetProgramUsageMessage(
      "The Herald sidecar: watches Kubernetes resources for handler "
      "processes.");
  absl::FlagsUsageConfig usage;
  usage.version_string = [] { return herald::app::VersionString() + "\n"; };
  absl::SetFlagsUsageConfig(usage);
  absl::ParseCommandLine(argc, argv);
  auto options = herald::app::AppOptionsFromFlags();
  if (!options.ok()) {
    herald::runtime::SetLogFormat(herald::app::LogFormatFromFlags());
    herald::app::SayWhyItStops(options.status().message());
    return 2;
  }
  herald::app::App app(*std::move(options));
  return app.Run();
}
