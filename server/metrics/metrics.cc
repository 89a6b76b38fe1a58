#include "server/metrics/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace herald::metrics {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "herald: metrics: %s\n", message.c_str());
  std::abort();
}

bool IsMetricName(absl::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                       c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool IsLabelName(absl::string_view s) {
  return IsMetricName(s) && s.find(':') == absl::string_view::npos;
}

// `{a="x",b="y"` without the closing brace (so that a histogram can add
// "le"), or "" when there are no labels.
std::string OpenLabels(const std::vector<std::string>& names,
                       const std::vector<std::string>& values) {
  if (names.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    absl::StrAppend(&out, names[i], "=\"", EscapeLabelValue(values[i]), "\"");
  }
  return out;
}

std::string CloseLabels(const std::string& open) {
  return open.empty() ? "" : open + "}";
}

void RenderHeader(const FamilyBase& f, std::string* out) {
  absl::StrAppend(out, "# HELP ", f.name(), " ", EscapeHelp(f.help()), "\n",
                  "# TYPE ", f.name(), " ", TypeName(f.type()), "\n");
}

template <typename T>
void RenderScalars(const FamilyBase& f, const ChildList<T>& children,
                   std::string* out) {
  RenderHeader(f, out);
  for (const auto& [values, child] : children) {
    absl::StrAppend(out, f.name(),
                    CloseLabels(OpenLabels(f.label_names(), values)), " ",
                    FormatValue(child->Value()), "\n");
  }
}

}  // namespace

// --- Histogram
// ----------------------------------------------------------------

Histogram::Histogram(std::shared_ptr<const std::vector<double>> bounds)
    : bounds_(std::move(bounds)),
      buckets_(new std::atomic<uint64_t>[bounds_->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double v) {
  // The first bound >= v: bounds are inclusive upper limits. NaN goes to
  // +Inf.
  const auto it = std::lower_bound(bounds_->begin(), bounds_->end(), v);
  const size_t b = std::isnan(v) ? bounds_->size()
                                 : static_cast<size_t>(it - bounds_->begin());
  buckets_[b].fetch_add(1, std::memory_order_relaxed);
  sum_.Add(v);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.cumulative.reserve(bounds_->size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(total);
  }
  s.sum = sum_.Load();
  return s;
}

const std::vector<double>& LatencyBuckets() {
  static const auto* const kBuckets = new std::vector<double>{
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
      0.5,   1,      2.5,   5,    10,    30,   60};
  return *kBuckets;
}

absl::string_view TypeName(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// --- Families
// -------------------------------------------------------------------

void FamilyBase::CheckArity(size_t values) const {
  if (values != label_names_.size()) {
    Die(absl::StrCat(name_, " has ", label_names_.size(), " label(s) (",
                     absl::StrJoin(label_names_, ", "), "); given ", values,
                     " value(s)"));
  }
}

void RenderFamily(const FamilyBase& f, const ChildList<Counter>& children,
                  std::string* out) {
  if (!children.empty()) RenderScalars<Counter>(f, children, out);
}

void RenderFamily(const FamilyBase& f, const ChildList<Gauge>& children,
                  std::string* out) {
  if (!children.empty()) RenderScalars<Gauge>(f, children, out);
}

void RenderFamily(const FamilyBase& f, const ChildList<Histogram>& children,
                  std::string* out) {
  if (children.empty()) return;
  RenderHeader(f, out);
  const std::string& name = f.name();
  for (const auto& [values, child] : children) {
    const Histogram::Snapshot s = child->Read();
    const std::string open = OpenLabels(f.label_names(), values);
    const std::string prefix = open.empty() ? "{" : open + ",";
    const std::vector<double>& bounds = child->bounds();
    for (size_t i = 0; i < bounds.size(); ++i) {
      absl::StrAppend(out, name, "_bucket", prefix, "le=\"",
                      FormatValue(bounds[i]), "\"} ", s.cumulative[i], "\n");
    }
    const std::string labels = CloseLabels(open);
    absl::StrAppend(out, name, "_bucket", prefix, "le=\"+Inf\"} ", s.count(),
                    "\n", name, "_sum", labels, " ", FormatValue(s.sum), "\n",
                    name, "_count", labels, " ", s.count(), "\n");
  }
}

// --- Registry
// -------------------------------------------------------------------

template <typename F>
F* Registry::Add(std::unique_ptr<F> family) {
  absl::MutexLock lock(&mu_);
  for (const auto& f : families_) {
    if (f->name() == family->name()) {
      Die(absl::StrCat(family->name(), " is registered twice"));
    }
  }
  F* raw = family.get();
  families_.push_back(std::move(family));
  return raw;
}

Family<Counter>* Registry::AddCounter(const std::string& name,
                                      const std::string& help,
                                      std::vector<std::string> label_names) {
  if (absl::Status v = ValidateFamily(name, Type::kCounter, label_names);
      !v.ok()) {
    Die(std::string(v.message()));
  }
  return Add(std::make_unique<Family<Counter>>(
      name, help, Type::kCounter, std::move(label_names),
      [] { return std::make_unique<Counter>(); }));
}

Family<Gauge>* Registry::AddGauge(const std::string& name,
                                  const std::string& help,
                                  std::vector<std::string> label_names) {
  if (absl::Status v = ValidateFamily(name, Type::kGauge, label_names);
      !v.ok()) {
    Die(std::string(v.message()));
  }
  return Add(std::make_unique<Family<Gauge>>(
      name, help, Type::kGauge, std::move(label_names),
      [] { return std::make_unique<Gauge>(); }));
}

Family<Histogram>* Registry::AddHistogram(const std::string& name,
                                          const std::string& help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> bounds) {
  if (absl::Status v =
          ValidateFamily(name, Type::kHistogram, label_names, bounds);
      !v.ok()) {
    Die(std::string(v.message()));
  }
  auto shared = std::make_shared<const std::vector<double>>(std::move(bounds));
  return Add(std::make_unique<Family<Histogram>>(
      name, help, Type::kHistogram, std::move(label_names),
      [shared] { return std::make_unique<Histogram>(shared); }));
}

std::string Registry::Render() const {
  std::vector<const FamilyBase*> families;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& f : families_) families.push_back(f.get());
  }
  std::sort(families.begin(), families.end(),
            [](const FamilyBase* a, const FamilyBase* b) {
              return a->name() < b->name();
            });
  std::string out;
  for (const FamilyBase* f : families) f->Render(&out);
  return out;
}

// --- Checks and text
// ----------------------------------------------------------------

absl::Status ValidateFamily(absl::string_view name, Type type,
                            const std::vector<std::string>& label_names,
                            const std::vector<double>& bounds) {
  if (!IsMetricName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", name, "' is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"));
  }
  std::set<std::string> seen;
  for (const std::string& l : label_names) {
    if (!IsLabelName(l)) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": '", l, "' is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"));
    }
    if (absl::string_view(l).substr(0, 2) == "__") {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": label '", l, "' starts with '__', which is reserved"));
    }
    if (type == Type::kHistogram && l == "le") {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": a histogram cannot have a label 'le'"));
    }
    if (!seen.insert(l).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": label '", l, "' is given twice"));
    }
  }
  if (type == Type::kHistogram) {
    if (bounds.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": a histogram needs at least one bucket bound"));
    }
    for (size_t i = 0; i < bounds.size(); ++i) {
      if (!std::isfinite(bounds[i])) {
        return absl::InvalidArgumentError(absl::StrCat(
            name, ": bucket bound ", i, " is not finite (+Inf is implied)"));
      }
      if (i > 0 && !(bounds[i] > bounds[i - 1])) {
        return absl::InvalidArgumentError(absl::StrCat(
            name, ": bucket bounds must increase; bound ", i, " (",
            FormatValue(bounds[i]), ") follows ", FormatValue(bounds[i - 1])));
      }
    }
  }
  return absl::OkStatus();
}

std::string EscapeHelp(absl::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

}  // namespace herald::metrics
