#include "server/engine/flag_types.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/engine/registry.h"

namespace herald::engine {
namespace {

// One NAME=RESOURCE:label:KEY or NAME=RESOURCE:field:PATH.
absl::StatusOr<HandlerSpec> ParseIndexSpec(absl::string_view text) {
  const size_t eq = text.find('=');
  std::vector<std::string> parts;
  if (eq != absl::string_view::npos) {
    parts = absl::StrSplit(text.substr(eq + 1), absl::MaxSplits(':', 2));
  }
  if (eq == absl::string_view::npos || eq == 0 || parts.size() != 3 ||
      parts[0].empty() || parts[2].empty() ||
      (parts[1] != "label" && parts[1] != "field")) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text,
                     "' is not NAME=RESOURCE:label:KEY or "
                     "NAME=RESOURCE:field:PATH"));
  }
  HandlerSpec spec;
  spec.id = std::string(text.substr(0, eq));
  spec.resource = parts[0];
  spec.cause = Cause::kIndex;
  spec.index.emplace();
  if (parts[1] == "label") {
    spec.index->label = parts[2];
  } else {
    spec.index->field = parts[2];
  }
  if (absl::Status valid = ValidateSpec(spec); !valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "': ", valid.message()));
  }
  return spec;
}

}  // namespace

bool AbslParseFlag(absl::string_view text, IndexSpecs* indices,
                   std::string* error) {
  IndexSpecs parsed;
  if (!text.empty()) {
    for (absl::string_view entry : absl::StrSplit(text, ',')) {
      auto spec = ParseIndexSpec(entry);
      if (!spec.ok()) {
        *error = std::string(spec.status().message());
        return false;
      }
      parsed.specs.push_back(*std::move(spec));
    }
  }
  *indices = std::move(parsed);
  return true;
}

std::string AbslUnparseFlag(const IndexSpecs& indices) {
  std::string text;
  for (const auto& spec : indices.specs) {
    const IndexOptions index = spec.index.value_or(IndexOptions());
    absl::StrAppend(&text, text.empty() ? "" : ",", spec.id, "=", spec.resource,
                    ":", index.label.empty() ? "field:" : "label:",
                    index.label.empty() ? index.field : index.label);
  }
  return text;
}

bool AbslParseFlag(absl::string_view text, OperatorMemo* memo,
                   std::string* error) {
  nlohmann::json value =
      nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (!value.is_object()) {
    *error = "not a JSON object";
    return false;
  }
  memo->value = std::move(value);
  return true;
}

std::string AbslUnparseFlag(const OperatorMemo& memo) {
  return memo.value.dump();
}

}  // namespace herald::engine
