// Label selectors as kubectl's `-l` writes them, with the semantics of
// k8s.io/apimachinery/pkg/labels (selector.go):
//
//   app=web, app==web, app!=web      equality (!= also matches no label)
//   app in (web,api), app notin (db) sets (notin also matches no label)
//   app, !app                        existence
//   replicas>2, replicas<5           integer comparison of the label's value
//
// comma-separated, all of them must match. Keys and values are checked with
// Kubernetes' rules (below), so that a selector that could never match is an
// error instead of an empty answer.
#ifndef HERALD_SERVER_KUBE_LABEL_SELECTOR_H_
#define HERALD_SERVER_KUBE_LABEL_SELECTOR_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace herald::kube {

// Why `key` is not a valid label or annotation key, or "" when it is. A key
// is Kubernetes' qualified name: an optional prefix that is a DNS subdomain
// (lowercase, at most 253 characters) and '/', then a name of at most 63
// characters [A-Za-z0-9._-] starting and ending with a letter or digit.
std::string QualifiedNameError(absl::string_view key);

// Why `value` is not a valid label value, or "" when it is: empty, or at
// most 63 characters [A-Za-z0-9._-] starting and ending with a letter or
// digit.
std::string LabelValueError(absl::string_view value);

class LabelSelector {
 public:
  enum class Operator {
    kIn,
    kNotIn,
    kEquals,
    kDoubleEquals,
    kNotEquals,
    kExists,
    kDoesNotExist,
    kGreaterThan,
    kLessThan,
  };
  // A label's value by key; nullopt when the object has no such label.
  using Lookup =
      absl::FunctionRef<std::optional<absl::string_view>(absl::string_view)>;

  struct Requirement {
    std::string key;
    Operator op;
    std::vector<std::string> values;  // Sorted, without duplicates.
    bool Matches(Lookup labels) const;
  };

  // Matches everything.
  LabelSelector() = default;
  // An error says what is wrong and at which column (from 1) of `text`.
  static absl::StatusOr<LabelSelector> Parse(absl::string_view text);

  bool empty() const { return requirements_.empty(); }
  bool Matches(Lookup labels) const;
  bool Matches(const std::map<std::string, std::string>& labels) const;
  // Sorted by key, as Kubernetes keeps them.
  const std::vector<Requirement>& requirements() const { return requirements_; }
  // The canonical form, as selector.go's String() writes it:
  // "app in (api,web),!debug,tier!=db".
  std::string ToString() const;

 private:
  std::vector<Requirement> requirements_;
};

}  // namespace herald::kube

#endif  // HERALD_SERVER_KUBE_LABEL_SELECTOR_H_
