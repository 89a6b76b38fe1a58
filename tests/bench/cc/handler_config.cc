#include "tests/bench/cc/handler_config.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace herald::bench {

absl::StatusOr<v1::Cause> ParseCause(absl::string_view name) {
  if (name == "event") return v1::CAUSE_EVENT;
  if (name == "create") return v1::CAUSE_CREATE;
  if (name == "update") return v1::CAUSE_UPDATE;
  if (name == "resume") return v1::CAUSE_RESUME;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown cause '", name, "': use event, create, update or resume"));
}

absl::StatusOr<std::map<std::string, std::string>> ParseLabels(
    const std::vector<std::string>& items) {
  std::map<std::string, std::string> out;
  for (const auto& item : items) {
    for (absl::string_view part : absl::StrSplit(item, ',')) {
      if (part.empty()) continue;
      const size_t eq = part.find('=');
      if (eq == absl::string_view::npos || eq == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("label filter '", part, "' is not KEY=VALUE"));
      }
      out[std::string(part.substr(0, eq))] = std::string(part.substr(eq + 1));
    }
  }
  return out;
}

std::vector<std::string> TakeRepeatedFlag(absl::string_view name, int* argc,
                                          char** argv) {
  std::vector<std::string> values;
  const std::string dd = absl::StrCat("--", name);
  const std::string d = absl::StrCat("-", name);
  int kept = 1;
  for (int i = 1; i < *argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") {
      // Everything after "--" is positional.
      for (; i < *argc; ++i) argv[kept++] = argv[i];
      break;
    }
    if (arg == dd || arg == d) {
      if (i + 1 < *argc) values.emplace_back(argv[++i]);
      continue;
    }
    if (absl::ConsumePrefix(&arg, dd + "=") ||
        absl::ConsumePrefix(&arg, d + "=")) {
      values.emplace_back(arg);
      continue;
    }
    argv[kept++] = argv[i];
  }
  *argc = kept;
  argv[kept] = nullptr;
  return values;
}

v1::ConnectRequest BuildRegister(const HandlerConfig& config) {
  v1::ConnectRequest req;
  v1::Register* reg = req.mutable_register_();
  reg->set_process_name(config.process_name);
  reg->set_client("herald-bench-cc/1");
  reg->set_credits(config.credits);
  v1::HandlerSpec* spec = reg->add_handlers();
  spec->set_id(config.handler_id);
  spec->set_resource(config.resource);
  spec->set_cause(config.cause);
  for (const auto& [key, value] : config.labels) {
    v1::MetaFilter& f = (*spec->mutable_labels())[key];
    f.set_match(v1::META_MATCH_EQUALS);
    f.set_value(value);
  }
  return req;
}

}  // namespace herald::bench
