#include "server/kube/label_selector.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace herald::kube {
namespace {

constexpr size_t kMaxNameLength = 63;
constexpr size_t kMaxPrefixLength = 253;
constexpr char kNameRule[] =
    "must consist of letters, digits, '-', '_' or '.', and start and end "
    "with a letter or digit";

// [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?
bool IsNameChars(absl::string_view s) {
  if (s.empty() || !absl::ascii_isalnum(s.front()) ||
      !absl::ascii_isalnum(s.back())) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

// RFC 1123 subdomain: dot-separated [a-z0-9]([-a-z0-9]*[a-z0-9])?
bool IsDnsSubdomain(absl::string_view s) {
  for (absl::string_view label : absl::StrSplit(s, '.')) {
    auto lower_alnum = [](char c) {
      return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'z');
    };
    if (label.empty() || !lower_alnum(label.front()) ||
        !lower_alnum(label.back())) {
      return false;
    }
    for (char c : label) {
      if (!lower_alnum(c) && c != '-') return false;
    }
  }
  return true;
}

enum class Tok {
  kEnd,
  kClosePar,
  kComma,
  kNot,
  kDoubleEquals,
  kEquals,
  kGreaterThan,
  kIdentifier,
  kIn,
  kLessThan,
  kNotEquals,
  kNotIn,
  kOpenPar,
};

struct Token {
  Tok tok;
  std::string text;
  size_t column;  // From 1.
};

bool IsWhitespace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool IsSpecial(char c) {
  switch (c) {
    case '=':
    case '!':
    case '(':
    case ')':
    case ',':
    case '>':
    case '<':
      return true;
    default:
      return false;
  }
}

// As selector.go's Lexer: the longest operator, else an identifier up to
// the next operator character or whitespace; "in" and "notin" are keywords.
std::vector<Token> Lex(absl::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  for (;;) {
    while (i < s.size() && IsWhitespace(s[i])) ++i;
    if (i == s.size()) {
      out.push_back({Tok::kEnd, "", i + 1});
      return out;
    }
    const size_t start = i;
    if (IsSpecial(s[i])) {
      absl::string_view two = s.substr(i, 2);
      if (two == "!=" || two == "==") {
        out.push_back({two == "!=" ? Tok::kNotEquals : Tok::kDoubleEquals,
                       std::string(two), start + 1});
        i += 2;
        continue;
      }
      Tok t = Tok::kEnd;
      switch (s[i]) {
        case '=':
          t = Tok::kEquals;
          break;
        case '!':
          t = Tok::kNot;
          break;
        case '(':
          t = Tok::kOpenPar;
          break;
        case ')':
          t = Tok::kClosePar;
          break;
        case ',':
          t = Tok::kComma;
          break;
        case '>':
          t = Tok::kGreaterThan;
          break;
        case '<':
          t = Tok::kLessThan;
          break;
      }
      out.push_back({t, std::string(1, s[i]), start + 1});
      ++i;
      continue;
    }
    while (i < s.size() && !IsSpecial(s[i]) && !IsWhitespace(s[i])) ++i;
    std::string word(s.substr(start, i - start));
    Tok t = word == "in"      ? Tok::kIn
            : word == "notin" ? Tok::kNotIn
                              : Tok::kIdentifier;
    out.push_back({t, std::move(word), start + 1});
  }
}

std::string Describe(const Token& t) {
  return t.tok == Tok::kEnd ? "the end" : absl::StrCat("'", t.text, "'");
}

absl::Status ErrorAt(size_t column, absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat("at column ", column, ": ", message));
}

using Op = LabelSelector::Operator;
using Requirement = LabelSelector::Requirement;

struct Value {
  std::string text;
  size_t column;
};

// selector.go's recursive descent, with columns in its errors.
class Parser {
 public:
  explicit Parser(absl::string_view text) : tokens_(Lex(text)) {}

  absl::StatusOr<std::vector<Requirement>> Parse() {
    std::vector<Requirement> out;
    for (;;) {
      const Token& t = Lookahead(true);
      if (t.tok == Tok::kEnd) return out;
      if (t.tok != Tok::kIdentifier && t.tok != Tok::kNot) {
        return ErrorAt(t.column, absl::StrCat("found ", Describe(t),
                                              ", expected a key or '!'"));
      }
      auto r = ParseRequirement();
      if (!r.ok()) return r.status();
      out.push_back(std::move(*r));
      const Token& next = Consume(true);
      if (next.tok == Tok::kEnd) return out;
      if (next.tok != Tok::kComma) {
        return ErrorAt(next.column, absl::StrCat("found ", Describe(next),
                                                 ", expected ',' or the end"));
      }
      const Token& after = Lookahead(true);
      if (after.tok != Tok::kIdentifier && after.tok != Tok::kNot) {
        return ErrorAt(after.column,
                       absl::StrCat("found ", Describe(after),
                                    ", expected a key or '!' after ','"));
      }
    }
  }

 private:
  // In values, "in" and "notin" are plain identifiers.
  Token Adjust(const Token& t, bool values) const {
    Token out = t;
    if (values && (t.tok == Tok::kIn || t.tok == Tok::kNotIn)) {
      out.tok = Tok::kIdentifier;
    }
    return out;
  }
  Token Lookahead(bool values) const { return Adjust(tokens_[pos_], values); }
  Token Consume(bool values) {
    Token t = Adjust(tokens_[pos_], values);
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }

  absl::StatusOr<Requirement> ParseRequirement() {
    Requirement r;
    bool negated = false;
    Token key = Consume(true);
    if (key.tok == Tok::kNot) {
      negated = true;
      key = Consume(true);
    }
    if (key.tok != Tok::kIdentifier) {
      return ErrorAt(key.column,
                     absl::StrCat("found ", Describe(key), ", expected a key"));
    }
    if (std::string why = QualifiedNameError(key.text); !why.empty()) {
      return ErrorAt(key.column,
                     absl::StrCat("invalid key '", key.text, "': ", why));
    }
    r.key = key.text;
    const Tok next = Lookahead(true).tok;
    if (negated || next == Tok::kEnd || next == Tok::kComma) {
      // "!key=value" ends here: what follows is reported by Parse().
      r.op = negated ? Op::kDoesNotExist : Op::kExists;
      return r;
    }
    const Token op = Consume(false);
    switch (op.tok) {
      case Tok::kIn:
        r.op = Op::kIn;
        break;
      case Tok::kNotIn:
        r.op = Op::kNotIn;
        break;
      case Tok::kEquals:
        r.op = Op::kEquals;
        break;
      case Tok::kDoubleEquals:
        r.op = Op::kDoubleEquals;
        break;
      case Tok::kNotEquals:
        r.op = Op::kNotEquals;
        break;
      case Tok::kGreaterThan:
        r.op = Op::kGreaterThan;
        break;
      case Tok::kLessThan:
        r.op = Op::kLessThan;
        break;
      default:
        return ErrorAt(
            op.column,
            absl::StrCat("found ", Describe(op), " after key '", r.key,
                         "', expected one of: in, notin, =, ==, !=, >, <, "
                         "',' or the end"));
    }
    std::vector<Value> values;
    absl::Status st = r.op == Op::kIn || r.op == Op::kNotIn
                          ? ParseSet(&values)
                          : ParseExactValue(&values);
    if (!st.ok()) return st;
    for (const Value& v : values) {
      if (std::string why = LabelValueError(v.text); !why.empty()) {
        return ErrorAt(v.column,
                       absl::StrCat("invalid value '", v.text, "' for key '",
                                    r.key, "': ", why));
      }
      if (r.op == Op::kGreaterThan || r.op == Op::kLessThan) {
        int64_t n;
        if (!absl::SimpleAtoi(v.text, &n)) {
          return ErrorAt(
              v.column,
              absl::StrCat("'>' and '<' need an integer, found ",
                           v.text.empty() ? std::string("nothing")
                                          : absl::StrCat("'", v.text, "'")));
        }
      }
      r.values.push_back(v.text);
    }
    std::sort(r.values.begin(), r.values.end());
    r.values.erase(std::unique(r.values.begin(), r.values.end()),
                   r.values.end());
    return r;
  }

  // "(a,b)"; "()" and empty items are the empty value. Mirrors
  // selector.go's parseValues and parseIdentifiersList, quirks included
  // ("(a,,b)" and "(a,,,)" are accepted, "(a,,)" is not).
  absl::Status ParseSet(std::vector<Value>* out) {
    const Token open = Consume(true);
    if (open.tok != Tok::kOpenPar) {
      return ErrorAt(open.column,
                     absl::StrCat("found ", Describe(open), ", expected '('"));
    }
    const Token first = Lookahead(true);
    if (first.tok == Tok::kClosePar) {
      Consume(true);
      out->push_back({"", first.column});
      return absl::OkStatus();
    }
    if (first.tok != Tok::kIdentifier && first.tok != Tok::kComma) {
      return ErrorAt(first.column,
                     absl::StrCat("found ", Describe(first),
                                  ", expected a value, ',' or ')'"));
    }
    for (;;) {
      const Token t = Consume(true);
      if (t.tok == Tok::kIdentifier) {
        out->push_back({t.text, t.column});
        const Token next = Lookahead(true);
        if (next.tok == Tok::kComma) continue;
        if (next.tok == Tok::kClosePar) break;
        return ErrorAt(next.column, absl::StrCat("found ", Describe(next),
                                                 ", expected ',' or ')'"));
      }
      if (t.tok != Tok::kComma) {
        return ErrorAt(t.column, absl::StrCat("found ", Describe(t),
                                              ", expected a value or ','"));
      }
      if (out->empty()) out->push_back({"", t.column});  // "(,"
      const Token next = Lookahead(true);
      if (next.tok == Tok::kClosePar) {  // ",)"
        out->push_back({"", next.column});
        break;
      }
      if (next.tok == Tok::kComma) {  // ",,"
        Consume(true);
        out->push_back({"", next.column});
      }
    }
    Consume(true);  // ')'
    return absl::OkStatus();
  }

  // One value; none before ',' or the end is the empty value.
  absl::Status ParseExactValue(std::vector<Value>* out) {
    const Token t = Lookahead(true);
    if (t.tok == Tok::kEnd || t.tok == Tok::kComma) {
      out->push_back({"", t.column});
      return absl::OkStatus();
    }
    Consume(true);
    if (t.tok != Tok::kIdentifier) {
      return ErrorAt(t.column,
                     absl::StrCat("found ", Describe(t), ", expected a value"));
    }
    out->push_back({t.text, t.column});
    return absl::OkStatus();
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
};

}  // namespace

std::string QualifiedNameError(absl::string_view key) {
  if (key.empty()) return "it is empty";
  std::vector<absl::string_view> parts = absl::StrSplit(key, '/');
  if (parts.size() > 2) {
    return "more than one '/' (a key is an optional DNS subdomain prefix and "
           "'/', then a name, e.g. 'example.com/my-name')";
  }
  absl::string_view name = parts.back();
  if (parts.size() == 2) {
    absl::string_view prefix = parts[0];
    if (prefix.empty()) return "the prefix before '/' is empty";
    if (prefix.size() > kMaxPrefixLength) {
      return absl::StrCat("the prefix is ", prefix.size(),
                          " characters long, more than ", kMaxPrefixLength);
    }
    if (!IsDnsSubdomain(prefix)) {
      return absl::StrCat(
          "the prefix '", prefix,
          "' is not a DNS subdomain (lowercase letters, digits, '-' and "
          "'.', each dot-separated part starting and ending with a letter or "
          "digit)");
    }
    if (name.empty()) return "the name after '/' is empty";
  }
  if (name.size() > kMaxNameLength) {
    return absl::StrCat("the name is ", name.size(),
                        " characters long, more than ", kMaxNameLength);
  }
  if (!IsNameChars(name)) {
    return absl::StrCat("the name '", name, "' ", kNameRule);
  }
  return "";
}

std::string LabelValueError(absl::string_view value) {
  if (value.empty()) return "";
  if (value.size() > kMaxNameLength) {
    return absl::StrCat("it is ", value.size(), " characters long, more than ",
                        kMaxNameLength);
  }
  if (!IsNameChars(value)) return absl::StrCat("a label value ", kNameRule);
  return "";
}

bool LabelSelector::Requirement::Matches(Lookup labels) const {
  const std::optional<absl::string_view> value = labels(key);
  auto listed = [&] {
    return std::binary_search(values.begin(), values.end(), *value);
  };
  switch (op) {
    case Operator::kIn:
    case Operator::kEquals:
    case Operator::kDoubleEquals:
      return value.has_value() && listed();
    case Operator::kNotIn:
    case Operator::kNotEquals:
      return !value.has_value() || !listed();
    case Operator::kExists:
      return value.has_value();
    case Operator::kDoesNotExist:
      return !value.has_value();
    case Operator::kGreaterThan:
    case Operator::kLessThan: {
      int64_t have, want;
      if (!value.has_value() || values.size() != 1 ||
          !absl::SimpleAtoi(*value, &have) ||
          !absl::SimpleAtoi(values[0], &want)) {
        return false;
      }
      return op == Operator::kGreaterThan ? have > want : have < want;
    }
  }
  return false;
}

absl::StatusOr<LabelSelector> LabelSelector::Parse(absl::string_view text) {
  auto requirements = Parser(text).Parse();
  if (!requirements.ok()) return requirements.status();
  LabelSelector out;
  out.requirements_ = std::move(*requirements);
  std::stable_sort(
      out.requirements_.begin(), out.requirements_.end(),
      [](const Requirement& a, const Requirement& b) { return a.key < b.key; });
  return out;
}

bool LabelSelector::Matches(Lookup labels) const {
  for (const auto& r : requirements_) {
    if (!r.Matches(labels)) return false;
  }
  return true;
}

bool LabelSelector::Matches(
    const std::map<std::string, std::string>& labels) const {
  return Matches(
      [&labels](absl::string_view key) -> std::optional<absl::string_view> {
        auto it = labels.find(std::string(key));
        if (it == labels.end()) return std::nullopt;
        return absl::string_view(it->second);
      });
}

std::string LabelSelector::ToString() const {
  std::vector<std::string> parts;
  for (const auto& r : requirements_) {
    std::string values = absl::StrJoin(r.values, ",");
    switch (r.op) {
      case Operator::kIn:
        parts.push_back(absl::StrCat(r.key, " in (", values, ")"));
        break;
      case Operator::kNotIn:
        parts.push_back(absl::StrCat(r.key, " notin (", values, ")"));
        break;
      case Operator::kEquals:
        parts.push_back(absl::StrCat(r.key, "=", values));
        break;
      case Operator::kDoubleEquals:
        parts.push_back(absl::StrCat(r.key, "==", values));
        break;
      case Operator::kNotEquals:
        parts.push_back(absl::StrCat(r.key, "!=", values));
        break;
      case Operator::kExists:
        parts.push_back(r.key);
        break;
      case Operator::kDoesNotExist:
        parts.push_back(absl::StrCat("!", r.key));
        break;
      case Operator::kGreaterThan:
        parts.push_back(absl::StrCat(r.key, ">", values));
        break;
      case Operator::kLessThan:
        parts.push_back(absl::StrCat(r.key, "<", values));
        break;
    }
  }
  return absl::StrJoin(parts, ",");
}

}  // namespace herald::kube
