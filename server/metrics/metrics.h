// Prometheus metrics: counters, gauges and histograms with labels, kept in a
// Registry that writes them in the text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// A family is a metric name with its help text, type and label names; a
// child is one set of label values. Updating a child is a few atomic
// operations and takes no lock. Finding a child takes its family's mutex
// (briefly, for a hash lookup), so code on a hot path may look a child up
// once and keep the pointer: children live as long as the registry.
//
// Rendering copies each family's child pointers under the family's mutex and
// reads the atomics after releasing it: a scrape holds no lock that an
// updater waits for, beyond that copy. Collectors (AddCollector) run first,
// on the rendering thread, to set gauges from state that is read rather
// than counted. A family without children is not written at all.
//
// Names are checked when a family is added: an invalid metric or label name,
// a reserved label ("le" on a histogram, names starting with "__"), a name
// taken twice or histogram bounds that do not increase abort the program
// with a message naming the family (they are constants in the code). So does
// asking a family for a child with the wrong number of label values.
#ifndef HERALD_SERVER_METRICS_METRICS_H_
#define HERALD_SERVER_METRICS_METRICS_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace herald::metrics {

// The Content-Type of Registry::Render's text.
inline constexpr char kContentType[] =
    "text/plain; version=0.0.4; charset=utf-8";

// A double updated with atomic compare-and-swap (C++17 has no fetch_add for
// floating point).
class AtomicDouble {
 public:
  explicit AtomicDouble(double v = 0) : v_(v) {}
  double Load() const { return v_.load(std::memory_order_relaxed); }
  void Store(double v) { v_.store(v, std::memory_order_relaxed); }
  void Add(double d) {
    double cur = v_.load(std::memory_order_relaxed);
    while (!v_.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
    }
  }

 private:
  std::atomic<double> v_;
};

// Only goes up. Inc with a negative amount is ignored (a counter that went
// down would read as a restart).
class Counter {
 public:
  void Inc(double amount = 1) {
    if (amount > 0) value_.Add(amount);
  }
  double Value() const { return value_.Load(); }

 private:
  AtomicDouble value_;
};

class Gauge {
 public:
  void Set(double v) { value_.Store(v); }
  void Add(double d) { value_.Add(d); }
  double Value() const { return value_.Load(); }

 private:
  AtomicDouble value_;
};

// Counts observations into buckets with inclusive upper bounds ("le"), plus
// their sum. The bounds are the family's.
class Histogram {
 public:
  explicit Histogram(std::shared_ptr<const std::vector<double>> bounds);
  void Observe(double v);

  struct Snapshot {
    // Cumulative counts, one per bound, then +Inf (the total count).
    std::vector<uint64_t> cumulative;
    double sum = 0;
    uint64_t count() const { return cumulative.back(); }
  };
  // Read without a lock: under concurrent observations the sum may be a
  // moment ahead of or behind the counts, and the count is the buckets'
  // total, so that _count always equals the +Inf bucket.
  Snapshot Read() const;
  const std::vector<double>& bounds() const { return *bounds_; }

 private:
  std::shared_ptr<const std::vector<double>> bounds_;
  // One per bound, then one for the values above all bounds; not cumulative.
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  AtomicDouble sum_;
};

// Seconds from 1 ms to 1 min: the default buckets of latency histograms.
const std::vector<double>& LatencyBuckets();

enum class Type { kCounter, kGauge, kHistogram };
absl::string_view TypeName(Type type);

// What the registry needs of a family of any type.
class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, Type type,
             std::vector<std::string> label_names)
      : name_(std::move(name)),
        help_(std::move(help)),
        type_(type),
        label_names_(std::move(label_names)) {}
  virtual ~FamilyBase() = default;
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  Type type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Appends the family in the text format (nothing when it has no child).
  virtual void Render(std::string* out) const = 0;

 protected:
  // Aborts, naming the family, when `values` does not match its labels.
  void CheckArity(size_t values) const;

 private:
  const std::string name_, help_;
  const Type type_;
  const std::vector<std::string> label_names_;
};

// A family's text, its children read after the family's mutex is released;
// nothing when there are no children.
template <typename T>
using ChildList = std::vector<std::pair<std::vector<std::string>, const T*>>;
void RenderFamily(const FamilyBase& f, const ChildList<Counter>& children,
                  std::string* out);
void RenderFamily(const FamilyBase& f, const ChildList<Gauge>& children,
                  std::string* out);
void RenderFamily(const FamilyBase& f, const ChildList<Histogram>& children,
                  std::string* out);

template <typename T>
class Family : public FamilyBase {
 public:
  using Factory = std::function<std::unique_ptr<T>()>;
  Family(std::string name, std::string help, Type type,
         std::vector<std::string> label_names, Factory factory)
      : FamilyBase(std::move(name), std::move(help), type,
                   std::move(label_names)),
        factory_(std::move(factory)) {}

  // The child with these label values (in the order of the family's label
  // names), created on first use. Thread-safe; the pointer stays valid as
  // long as the registry.
  T* With(const std::vector<std::string>& values) {
    CheckArity(values.size());
    absl::MutexLock lock(&mu_);
    auto& slot = children_[values];
    if (slot == nullptr) slot = factory_();
    return slot.get();
  }
  // The child, or null when nothing asked for it yet.
  const T* Find(const std::vector<std::string>& values) const {
    absl::MutexLock lock(&mu_);
    auto it = children_.find(values);
    return it == children_.end() ? nullptr : it->second.get();
  }
  // Drops every child: for gauges whose label values are recomputed as a
  // whole (pointers taken earlier become invalid).
  void Clear() {
    absl::MutexLock lock(&mu_);
    children_.clear();
  }
  // The children, in label-value order, copied under the mutex.
  std::vector<std::pair<std::vector<std::string>, const T*>> Children() const {
    std::vector<std::pair<std::vector<std::string>, const T*>> out;
    {
      absl::MutexLock lock(&mu_);
      out.reserve(children_.size());
      for (const auto& [values, child] : children_) {
        out.emplace_back(values, child.get());
      }
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    return out;
  }

  void Render(std::string* out) const override {
    RenderFamily(*this, Children(), out);
  }

 private:
  const Factory factory_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::vector<std::string>, std::unique_ptr<T>> children_
      ABSL_GUARDED_BY(mu_);
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Families are owned by the registry. Names are checked (see above).
  Family<Counter>* AddCounter(const std::string& name, const std::string& help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>* AddGauge(const std::string& name, const std::string& help,
                          std::vector<std::string> label_names = {});
  Family<Histogram>* AddHistogram(
      const std::string& name, const std::string& help,
      std::vector<std::string> label_names,
      std::vector<double> bounds = LatencyBuckets());

  // Every family with children, in name order, in the text format.
  std::string Render() const;

 private:
  template <typename F>
  F* Add(std::unique_ptr<F> family);

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<FamilyBase>> families_ ABSL_GUARDED_BY(mu_);
};

// Why a family cannot be registered, or OK: the name rules of the text
// format ([a-zA-Z_:][a-zA-Z0-9_:]* for metrics, [a-zA-Z_][a-zA-Z0-9_]* for
// labels, no label starting with "__", no "le" on a histogram, no label
// twice) and, for histograms, finite increasing bounds.
absl::Status ValidateFamily(absl::string_view name, Type type,
                            const std::vector<std::string>& label_names,
                            const std::vector<double>& bounds = {});

// The text format's escaping: of help text (backslash, newline) and of label
// values (backslash, double quote, newline).
std::string EscapeHelp(absl::string_view help);
std::string EscapeLabelValue(absl::string_view value);
// A sample value as Prometheus writes one: the shortest text that reads back
// as the same double ("1", "0.25", "1e+21"), "+Inf", "-Inf" or "NaN".
std::string FormatValue(double v);

}  // namespace herald::metrics

#endif  // HERALD_SERVER_METRICS_METRICS_H_
