// Which namespaces a resource is watched in, as users write it:
// "" or "*" for cluster-wide; "ns1,ns2" for fixed namespaces; globs and
// negations such as "team-*,!team-x" for namespaces that come and go.
#ifndef HERALD_SERVER_KUBE_NAMESPACE_SCOPE_H_
#define HERALD_SERVER_KUBE_NAMESPACE_SCOPE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace herald::kube {

class NamespaceScope {
 public:
  // Cluster-wide.
  NamespaceScope() = default;
  static absl::StatusOr<NamespaceScope> Parse(absl::string_view spec);

  bool cluster_wide() const { return includes_.empty() && excludes_.empty(); }
  // Only plain names: no globs, no negations. Such a scope needs no
  // permission to list namespaces.
  bool fixed() const { return fixed_; }
  // For a fixed scope: its namespaces.
  const std::vector<std::string>& names() const { return includes_; }
  bool Matches(absl::string_view ns) const;
  const std::string& spec() const { return spec_; }

 private:
  std::string spec_;
  std::vector<std::string> includes_;
  std::vector<std::string> excludes_;
  bool fixed_ = false;
};

// --namespaces (Abseil's flag extension point, so absl::ParseFlag and
// absl::UnparseFlag take a scope): Parse, its error saying why; the text
// parsed, back.
bool AbslParseFlag(absl::string_view text, NamespaceScope* scope,
                   std::string* error);
std::string AbslUnparseFlag(const NamespaceScope& scope);

}  // namespace herald::kube

#endif  // HERALD_SERVER_KUBE_NAMESPACE_SCOPE_H_
