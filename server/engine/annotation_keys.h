// Names of the annotations that hold progress and diff-bases, formed exactly
// as Kopf forms them, so that Herald reads and writes the same keys as a Kopf
// operator with the same prefix and can take over from it.
//
// Kopf writes two keys per record when they differ:
// - v2: "<prefix>/<safe id>", the id part cut to 63 characters, a cut one
//   ending in "-" plus a hash of the original id;
// - v1: the same, but the 63 characters include the prefix and the hash is
//   of the safe id.
// A safe id has "/" replaced by "." and "<", ">" by "_". The hash is the
// 4-byte BLAKE2b digest in base64 with the altchars "-.", with "=", "-" and
// "." stripped from the end.
#ifndef HERALD_SERVER_ENGINE_ANNOTATION_KEYS_H_
#define HERALD_SERVER_ENGINE_ANNOTATION_KEYS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace herald::engine {

// The annotation name part of Kopf's marker: "<prefix>/kopf-managed" tells
// Kopf-based operators that the prefix belongs to one of them.
inline constexpr char kManagedMarker[] = "kopf-managed";
inline constexpr char kKopfPrefix[] = "kopf.zalando.org";

class AnnotationKeys {
 public:
  // `v1`: also write and read the v1 keys, as Kopf does by default.
  explicit AnnotationKeys(std::string prefix, bool v1 = true)
      : prefix_(std::move(prefix)), v1_(v1) {}

  const std::string& prefix() const { return prefix_; }

  // The keys for record `key` on `body` (v2 first). ReplicaSets owned by a
  // Deployment get "-ofDRS" appended to the key first: Kubernetes copies a
  // Deployment's annotations onto its ReplicaSets.
  std::vector<std::string> Keys(absl::string_view key,
                                const nlohmann::json& body) const;
  std::vector<std::string> Keys(absl::string_view key) const;

  static std::string SafeKey(absl::string_view key);
  static std::string Suffix(absl::string_view key);
  std::string V1Key(absl::string_view key) const;
  std::string V2Key(absl::string_view key) const;

  // The marker annotation to add for a non-Kopf prefix ("" for prefixes that
  // start with "kopf.", which Kopf knows already).
  std::string MarkerKey() const;

 private:
  std::string prefix_;
  bool v1_;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_ANNOTATION_KEYS_H_
