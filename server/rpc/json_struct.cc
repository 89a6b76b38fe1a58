#include "server/rpc/json_struct.h"

#include "google/protobuf/util/json_util.h"

namespace herald::rpc {

using nlohmann::json;

namespace {

void ToFields(const json& object, google::protobuf::Struct* out) {
  auto& fields = *out->mutable_fields();
  for (auto it = object.begin(); it != object.end(); ++it) {
    JsonToValue(it.value(), &fields[it.key()]);
  }
}

}  // namespace

void JsonToValue(const json& j, google::protobuf::Value* out) {
  switch (j.type()) {
    case json::value_t::boolean:
      out->set_bool_value(j.get<bool>());
      break;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      out->set_number_value(j.get<double>());
      break;
    case json::value_t::string:
      out->set_string_value(j.get_ref<const std::string&>());
      break;
    case json::value_t::array: {
      auto* list = out->mutable_list_value();
      for (const auto& item : j) JsonToValue(item, list->add_values());
      break;
    }
    case json::value_t::object:
      ToFields(j, out->mutable_struct_value());
      break;
    default:
      out->set_null_value(google::protobuf::NULL_VALUE);
      break;
  }
}

absl::Status JsonToStruct(const std::string& text,
                          google::protobuf::Struct* out) {
  if (google::protobuf::util::JsonStringToMessage(text, out).ok()) {
    return absl::OkStatus();
  }
  out->Clear();
  const json parsed = json::parse(text, nullptr, false);
  if (!parsed.is_object()) {
    return absl::InvalidArgumentError(
        parsed.is_discarded() ? "it is not valid JSON" : "it is not an object");
  }
  ToFields(parsed, out);
  return absl::OkStatus();
}

}  // namespace herald::rpc
