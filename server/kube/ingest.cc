#include "server/kube/ingest.h"

#include <cctype>
#include <cstring>
#include <string>

#include "nlohmann/json.hpp"
#include "simdjson.h"

namespace herald::kube {
namespace {

using nlohmann::json;
namespace od = simdjson::ondemand;

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// A padded copy of `text` (simdjson reads up to SIMDJSON_PADDING bytes past
// the end), reused per thread.
const char* Padded(absl::string_view text, size_t* capacity) {
  thread_local std::string buffer;
  if (buffer.size() < text.size() + simdjson::SIMDJSON_PADDING) {
    buffer.resize(text.size() + simdjson::SIMDJSON_PADDING);
  }
  std::memcpy(buffer.data(), text.data(), text.size());
  std::memset(buffer.data() + text.size(), 0, simdjson::SIMDJSON_PADDING);
  *capacity = buffer.size();
  return buffer.data();
}

od::parser& Parser() {
  thread_local od::parser parser;
  return parser;
}

// Starts reading `text` as one JSON object with this thread's parser: the
// padded copy it reads (an offset in it is one in `text`), or null when
// `text` is no JSON object.
const char* OpenObject(absl::string_view text, od::document* doc,
                       od::object* obj) {
  size_t capacity = 0;
  const char* base = Padded(text, &capacity);
  if (Parser().iterate(base, text.size(), capacity).get(*doc)) return nullptr;
  if (doc->get_object().get(*obj)) return nullptr;
  return base;
}

// The fast path; false means "use the DOM path".
bool IngestFast(absl::string_view text, bool strip, cache::CachedObject* out) {
  od::document doc;
  od::object obj;
  const char* base = OpenObject(text, &doc, &obj);
  if (base == nullptr) return false;
  bool seen_metadata = false;
  const char* cut_begin = nullptr;
  const char* cut_end = nullptr;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return false;
    if (key != "metadata") continue;  // On-demand skips what is not read.
    if (seen_metadata) return false;
    seen_metadata = true;
    od::object meta;
    if (field.value().get_object().get(meta)) return false;
    for (auto mf : meta) {
      const char* key_start = mf.key().raw() - 1;  // The opening quote.
      std::string_view mkey;
      if (mf.unescaped_key().get(mkey)) return false;
      std::string* target = mkey == "name"              ? &out->key.name
                            : mkey == "namespace"       ? &out->key.ns
                            : mkey == "uid"             ? &out->uid
                            : mkey == "resourceVersion" ? &out->resource_version
                                                        : nullptr;
      if (target != nullptr) {
        std::string_view v;
        auto value = mf.value();
        if (value.type() == od::json_type::string) {
          if (value.get_string().get(v)) return false;
          target->assign(v.data(), v.size());
        }
        continue;
      }
      if (strip && mkey == "managedFields") {
        if (cut_begin != nullptr) return false;
        std::string_view raw;
        auto value = mf.value();
        if (value.type() == od::json_type::array) {
          od::array arr;
          if (value.get_array().get(arr) || arr.raw_json().get(raw)) {
            return false;
          }
        } else {
          return false;  // Not an array: let the DOM path handle it.
        }
        cut_begin = key_start;
        cut_end = raw.data() + raw.size();
        continue;
      }
    }
  }
  if (!seen_metadata || out->key.name.empty()) return false;
  // The text without managedFields (and one comma next to it), minified.
  std::string cut;
  absl::string_view keep = text;
  if (cut_begin != nullptr) {
    size_t b = cut_begin - base;
    size_t e = cut_end - base;
    size_t after = e;
    while (after < text.size() &&
           isspace(static_cast<unsigned char>(text[after])))
      ++after;
    if (after < text.size() && text[after] == ',') {
      e = after + 1;
    } else {
      size_t before = b;
      while (before > 0 &&
             isspace(static_cast<unsigned char>(text[before - 1])))
        --before;
      if (before == 0 || text[before - 1] != ',') return false;
      b = before - 1;
    }
    cut.reserve(text.size() - (e - b));
    cut.append(text.data(), b);
    cut.append(text.data() + e, text.size() - e);
    keep = cut;
  }
  out->json.resize(keep.size());
  size_t len = 0;
  if (simdjson::minify(keep.data(), keep.size(), out->json.data(), len)) {
    return false;
  }
  out->json.resize(len);
  return true;
}

}  // namespace

absl::StatusOr<cache::CachedObject> IngestObjectWithDom(
    absl::string_view text, bool strip_managed_fields) {
  json obj = json::parse(text.begin(), text.end(), nullptr, false);
  if (obj.is_discarded()) {
    return absl::InvalidArgumentError("object is not JSON");
  }
  return IngestParsed(obj, strip_managed_fields);
}

absl::StatusOr<cache::CachedObject> IngestParsed(json& obj,
                                                 bool strip_managed_fields) {
  if (!obj.is_object()) {
    return absl::InvalidArgumentError("object is not a JSON object");
  }
  auto meta = obj.find("metadata");
  if (meta == obj.end() || !meta->is_object()) {
    return absl::InvalidArgumentError("object has no metadata");
  }
  if (strip_managed_fields) meta->erase("managedFields");
  cache::CachedObject out;
  out.key.ns = Str(*meta, "namespace");
  out.key.name = Str(*meta, "name");
  out.uid = Str(*meta, "uid");
  out.resource_version = Str(*meta, "resourceVersion");
  if (out.key.name.empty()) {
    return absl::InvalidArgumentError("object has no metadata.name");
  }
  out.json = obj.dump();
  return out;
}

absl::StatusOr<cache::CachedObject> IngestObject(absl::string_view text,
                                                 bool strip_managed_fields) {
  cache::CachedObject out;
  if (IngestFast(text, strip_managed_fields, &out)) return out;
  return IngestObjectWithDom(text, strip_managed_fields);
}

bool SplitWatchEvent(absl::string_view line, std::string* type,
                     absl::string_view* object) {
  od::document doc;
  od::object obj;
  const char* base = OpenObject(line, &doc, &obj);
  if (base == nullptr) return false;
  bool have_type = false, have_object = false;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return false;
    if (key == "type" && !have_type) {
      std::string_view v;
      if (field.value().get_string().get(v)) return false;
      type->assign(v.data(), v.size());
      have_type = true;
    } else if (key == "object" && !have_object) {
      od::object o;
      std::string_view raw;
      if (field.value().get_object().get(o) || o.raw_json().get(raw)) {
        return false;
      }
      *object = line.substr(raw.data() - base, raw.size());
      have_object = true;
    }
  }
  return have_type && have_object;
}

}  // namespace herald::kube
