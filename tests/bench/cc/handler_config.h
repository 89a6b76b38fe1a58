// bench_handler's configuration and the Register message it sends.
#ifndef HERALD_TESTS_BENCH_CC_HANDLER_CONFIG_H_
#define HERALD_TESTS_BENCH_CC_HANDLER_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "herald/v1/handler.pb.h"

namespace herald::bench {

struct HandlerConfig {
  std::string process_name;
  std::string resource;
  std::string handler_id;
  v1::Cause cause = v1::CAUSE_EVENT;
  // Label key to the value it must equal.
  std::map<std::string, std::string> labels;
  uint32_t credits = 64;
};

// "event", "create", "update" or "resume".
absl::StatusOr<v1::Cause> ParseCause(absl::string_view name);

// Items "k=v", each possibly a comma-separated list of them, to a map; a
// later value for the same key wins.
absl::StatusOr<std::map<std::string, std::string>> ParseLabels(
    const std::vector<std::string>& items);

// Removes every occurrence of `--name=value`, `--name value` (and the
// single-dash forms) from argv and returns the values in order. Abseil keeps
// only the last value of a repeated flag; this collects them all.
std::vector<std::string> TakeRepeatedFlag(absl::string_view name, int* argc,
                                          char** argv);

// The first message of the stream: one handler, EQUALS label filters.
v1::ConnectRequest BuildRegister(const HandlerConfig& config);

}  // namespace herald::bench

#endif  // HERALD_TESTS_BENCH_CC_HANDLER_CONFIG_H_
