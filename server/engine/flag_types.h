// The engine's settings as the command line writes them, with Abseil's flag
// extension point (AbslParseFlag / AbslUnparseFlag), so that absl::ParseFlag
// and absl::UnparseFlag take them. A parse error says why, naming the part
// of the text that is wrong; the caller names the flag.
#ifndef HERALD_SERVER_ENGINE_FLAG_TYPES_H_
#define HERALD_SERVER_ENGINE_FLAG_TYPES_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "server/engine/handler_spec.h"

namespace herald::engine {

// --index: declarative indices computed by the sidecar, comma-separated,
// each NAME=RESOURCE:label:KEY or NAME=RESOURCE:field:PATH
// ("by_app=pods:label:app,by_node=pods:field:spec.nodeName"); "" for none.
// Each becomes an index handler spec that ValidateSpec accepts.
struct IndexSpecs {
  std::vector<HandlerSpec> specs;
};
bool AbslParseFlag(absl::string_view text, IndexSpecs* indices,
                   std::string* error);
std::string AbslUnparseFlag(const IndexSpecs& indices);

// --operator_memo: a JSON object, each object's memo starting as a shallow
// copy of it.
struct OperatorMemo {
  nlohmann::json value = nlohmann::json::object();
};
bool AbslParseFlag(absl::string_view text, OperatorMemo* memo,
                   std::string* error);
std::string AbslUnparseFlag(const OperatorMemo& memo);

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_FLAG_TYPES_H_
