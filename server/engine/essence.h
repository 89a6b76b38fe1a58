// An object's essence and the diff of two essences, as Kopf computes them:
// an update is a change of essence, and update handlers get its diff.
//
// The essence is the body without apiVersion, kind, metadata and status, plus
// metadata.labels and metadata.annotations, minus
// kubectl.kubernetes.io/last-applied-configuration, minus the annotations of
// this operator's prefix and of every prefix marked as a Kopf-based
// operator's, with empty stanzas dropped.
#ifndef HERALD_SERVER_ENGINE_ESSENCE_H_
#define HERALD_SERVER_ENGINE_ESSENCE_H_

#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace herald::engine {

// `prefix`: this operator's annotation prefix. `extra_fields`: dotted paths
// kept even where the rules above drop them (status fields that field
// handlers watch).
nlohmann::json Essence(const nlohmann::json& body, const std::string& prefix,
                       const std::vector<std::string>& extra_fields = {});

// One change between two values: op is "add", "change" or "remove".
struct DiffItem {
  std::string op;
  std::vector<std::string> path;
  nlohmann::json old_value;
  nlohmann::json new_value;
};
using Diff = std::vector<DiffItem>;

// Kopf's diff: maps are compared key by key (added keys first, then removed,
// then common, each in key order); lists and scalars as whole values; null
// and absent are the same.
Diff ComputeDiff(const nlohmann::json& old_value,
                 const nlohmann::json& new_value);

// The diff as seen from inside `path` (for field handlers).
Diff ReduceDiff(const Diff& diff, const std::vector<std::string>& path);

// As JSON: [[op, [path...], old, new], ...].
nlohmann::json DiffToJson(const Diff& diff);

// "spec.a.b" to {"spec", "a", "b"}.
std::vector<std::string> ParseFieldPath(const std::string& dotted);

// The value at `path`, or null.
const nlohmann::json& Resolve(const nlohmann::json& value,
                              const std::vector<std::string>& path);

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_ESSENCE_H_
