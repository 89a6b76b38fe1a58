#include "server/kube/namespace_scope.h"

#include <fnmatch.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace herald::kube {
namespace {

bool ValidPattern(absl::string_view p) {
  for (char c : p) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
          c == '*' || c == '?' || c == '[' || c == ']' || c == '.')) {
      return false;
    }
  }
  return !p.empty();
}

bool Glob(const std::string& pattern, absl::string_view ns) {
  return fnmatch(pattern.c_str(), std::string(ns).c_str(), 0) == 0;
}

}  // namespace

absl::StatusOr<NamespaceScope> NamespaceScope::Parse(absl::string_view spec) {
  NamespaceScope s;
  s.spec_ = std::string(spec);
  bool plain = true;
  for (absl::string_view raw : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    absl::string_view part = absl::StripAsciiWhitespace(raw);
    if (part.empty()) continue;
    bool negated = false;
    if (part[0] == '!') {
      negated = true;
      part.remove_prefix(1);
    }
    if (!ValidPattern(part)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "namespace scope '", spec, "': '", raw,
          "' is not a namespace name or glob (letters, digits, '-', '*', '?', "
          "'[...]', optionally after '!')"));
    }
    if (part == "*" && !negated) continue;  // Everything: same as no include.
    plain = plain && !negated &&
            part.find_first_of("*?[") == absl::string_view::npos;
    (negated ? s.excludes_ : s.includes_).emplace_back(part);
  }
  s.fixed_ = plain && !s.includes_.empty();
  return s;
}

bool NamespaceScope::Matches(absl::string_view ns) const {
  bool in = includes_.empty();
  for (const auto& p : includes_) {
    if (Glob(p, ns)) {
      in = true;
      break;
    }
  }
  if (!in) return false;
  for (const auto& p : excludes_) {
    if (Glob(p, ns)) return false;
  }
  return true;
}

}  // namespace herald::kube
