#include "server/engine/annotation_keys.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "server/engine/blake2b.h"

namespace herald::engine {
namespace {

constexpr size_t kMaxNameLength = 63;

bool IsDeploymentReplicaSet(const nlohmann::json& body) {
  if (!body.is_object() || body.value("kind", "") != "ReplicaSet") return false;
  auto meta = body.find("metadata");
  if (meta == body.end() || !meta->is_object()) return false;
  auto owners = meta->find("ownerReferences");
  if (owners == meta->end() || !owners->is_array()) return false;
  for (const auto& o : *owners) {
    if (o.is_object() && o.value("kind", "") == "Deployment") return true;
  }
  return false;
}

}  // namespace

std::string AnnotationKeys::SafeKey(absl::string_view key) {
  return absl::StrReplaceAll(key, {{"/", "."}, {"<", "_"}, {">", "_"}});
}

std::string AnnotationKeys::Suffix(absl::string_view key) {
  std::string b64;
  absl::Base64Escape(Blake2b(key, 4), &b64);
  for (char& c : b64) {
    if (c == '+') c = '-';
    if (c == '/') c = '.';
  }
  std::string out = absl::StrCat("-", b64);
  while (!out.empty() &&
         (out.back() == '=' || out.back() == '-' || out.back() == '.')) {
    out.pop_back();
  }
  return out;
}

std::string AnnotationKeys::V1Key(absl::string_view key) const {
  const std::string safe = SafeKey(key);
  const std::string prefix = prefix_.empty() ? "" : prefix_ + "/";
  std::string suffix;
  if (safe.size() + prefix.size() > kMaxNameLength) suffix = Suffix(safe);
  const size_t room = kMaxNameLength > prefix.size() + suffix.size()
                          ? kMaxNameLength - prefix.size() - suffix.size()
                          : 0;
  return absl::StrCat(prefix, safe.substr(0, room), suffix);
}

std::string AnnotationKeys::V2Key(absl::string_view key) const {
  const std::string prefix = prefix_.empty() ? "" : prefix_ + "/";
  const std::string suffix = key.size() > kMaxNameLength ? Suffix(key) : "";
  const size_t room =
      kMaxNameLength > suffix.size() ? kMaxNameLength - suffix.size() : 0;
  return absl::StrCat(prefix, SafeKey(key).substr(0, room), suffix);
}

std::vector<std::string> AnnotationKeys::Keys(absl::string_view key) const {
  std::vector<std::string> out = {V2Key(key)};
  if (v1_) {
    std::string v1 = V1Key(key);
    if (v1 != out[0]) out.push_back(std::move(v1));
  }
  return out;
}

std::vector<std::string> AnnotationKeys::Keys(
    absl::string_view key, const nlohmann::json& body) const {
  if (IsDeploymentReplicaSet(body)) return Keys(absl::StrCat(key, "-ofDRS"));
  return Keys(key);
}

std::string AnnotationKeys::MarkerKey() const {
  if (prefix_.empty() || absl::StartsWith(prefix_, "kopf.")) return "";
  return absl::StrCat(prefix_, "/", kManagedMarker);
}

}  // namespace herald::engine
