// JSON text as google.protobuf.Struct, for views that grpcurl prints as JSON.
#ifndef HERALD_SERVER_RPC_JSON_STRUCT_H_
#define HERALD_SERVER_RPC_JSON_STRUCT_H_

#include <string>

#include "absl/status/status.h"
#include "google/protobuf/struct.pb.h"
#include "nlohmann/json.hpp"

namespace herald::rpc {

// A JSON object (a cached object, a memo) as a Struct. Protobuf's JSON
// parser refuses objects nested more than about 33 levels (it re-parses what
// it built under the binary parser's recursion limit of 100, and each JSON
// level is three messages deep); those are built from nlohmann's DOM, which
// has no such limit. An error says why the text is no JSON object at all.
absl::Status JsonToStruct(const std::string& text,
                          google::protobuf::Struct* out);

// Any JSON value as a Value; numbers become doubles.
void JsonToValue(const nlohmann::json& j, google::protobuf::Value* out);

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_JSON_STRUCT_H_
