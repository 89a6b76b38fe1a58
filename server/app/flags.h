// The herald binary's command-line flags (defined in flags.cc, one per
// AppOptions field, with the same names, defaults and help as always).
#ifndef HERALD_SERVER_APP_FLAGS_H_
#define HERALD_SERVER_APP_FLAGS_H_

#include "absl/status/statusor.h"
#include "server/app/options.h"

namespace herald::app {

// The options the flags (parsed by absl::ParseCommandLine) give, checked
// with ValidateAppOptions. An error is one line naming the first bad flag,
// its value and why: "--index='x': 'x' is not NAME=RESOURCE:label:KEY or
// NAME=RESOURCE:field:PATH".
absl::StatusOr<AppOptions> AppOptionsFromFlags();

// --log_format as parsed, or text when it does not parse: the format of the
// line saying why the flags are refused.
runtime::LogFormat LogFormatFromFlags();

}  // namespace herald::app

#endif  // HERALD_SERVER_APP_FLAGS_H_
