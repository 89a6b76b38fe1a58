#include "server/kube/namespace_scope.h"

#include <fnmatch.h>

#include <algorithm>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace herald::kube {
namespace {

bool LowerAlnum(char c) {
  return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'z');
}

constexpr char kNameRule[] =
    "lowercase letters, digits and '-', starting and ending with a letter or "
    "digit, at most 63 characters";

// Why `p` (a name, or a glob of *, ? and [...]) can match no namespace name,
// or "" when it can. Namespace names are RFC 1123 labels.
std::string PatternError(absl::string_view p) {
  if (p.empty()) return "an empty pattern after '!'";
  if (p.find_first_of("*?[") == absl::string_view::npos) {
    if (p.size() > 63 || !LowerAlnum(p.front()) || !LowerAlnum(p.back()) ||
        !std::all_of(p.begin(), p.end(),
                     [](char c) { return LowerAlnum(c) || c == '-'; })) {
      return absl::StrCat("'", p, "' is not a namespace name (", kNameRule,
                          ")");
    }
    return "";
  }
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '[') {
      size_t j = i + 1;
      if (j < p.size() && (p[j] == '!' || p[j] == '^')) ++j;
      const size_t first = j;
      while (j < p.size() && p[j] != ']') {
        if (!LowerAlnum(p[j]) && p[j] != '-') {
          return absl::StrCat(
              "'", p, "': '", std::string(1, p[j]), "' at position ", j + 1,
              " cannot be in a namespace name (", kNameRule, ")");
        }
        ++j;
      }
      if (j == p.size()) {
        return absl::StrCat("'", p, "': the '[' at position ", i + 1,
                            " is never closed (a [...] lists characters or "
                            "ranges, e.g. team-[ab] or team-[a-c])");
      }
      if (j == first) {
        return absl::StrCat("'", p, "': the [...] at position ", i + 1,
                            " lists no characters");
      }
      i = j;
      continue;
    }
    if (c == ']') {
      return absl::StrCat("'", p, "': the ']' at position ", i + 1,
                          " closes no '['");
    }
    if (!LowerAlnum(c) && c != '-' && c != '*' && c != '?') {
      return absl::StrCat("'", p, "': '", std::string(1, c), "' at position ",
                          i + 1, " cannot be in a namespace name (", kNameRule,
                          ")");
    }
  }
  return "";
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
    if (std::string why = PatternError(part); !why.empty()) {
      return absl::InvalidArgumentError(why);
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

bool AbslParseFlag(absl::string_view text, NamespaceScope* scope,
                   std::string* error) {
  auto parsed = NamespaceScope::Parse(text);
  if (!parsed.ok()) {
    *error = std::string(parsed.status().message());
    return false;
  }
  *scope = *std::move(parsed);
  return true;
}

std::string AbslUnparseFlag(const NamespaceScope& scope) {
  return scope.spec();
}

}  // namespace herald::kube
