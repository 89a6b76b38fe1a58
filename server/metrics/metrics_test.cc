#include "server/metrics/metrics.h"

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace herald::metrics {
namespace {

TEST(MetricsTest, CounterWithLabelsRendersHelpTypeAndSortedChildren) {
  Registry r;
  auto* c = r.AddCounter("requests_total", "Requests served.", {"code", "m"});
  c->With({"500", "GET"})->Inc();
  c->With({"200", "GET"})->Inc(2);
  c->With({"200", "GET"})->Inc();
  EXPECT_EQ(r.Render(),
            "# HELP requests_total Requests served.\n"
            "# TYPE requests_total counter\n"
            "requests_total{code=\"200\",m=\"GET\"} 3\n"
            "requests_total{code=\"500\",m=\"GET\"} 1\n");
}

TEST(MetricsTest, CounterIgnoresNegativeAmounts) {
  Registry r;
  auto* c = r.AddCounter("x_total", "x")->With({});
  c->Inc(2.5);
  c->Inc(-1);
  EXPECT_EQ(c->Value(), 2.5);
}

TEST(MetricsTest, GaugeWithoutLabelsHasNoBraces) {
  Registry r;
  auto* g = r.AddGauge("temperature", "Degrees.");
  g->With({})->Set(21.5);
  g->With({})->Add(-0.25);
  EXPECT_EQ(r.Render(),
            "# HELP temperature Degrees.\n"
            "# TYPE temperature gauge\n"
            "temperature 21.25\n");
}

TEST(MetricsTest, FamilyWithoutChildrenIsNotWritten) {
  Registry r;
  r.AddGauge("leader", "Leads.", {"name"});
  auto* c = r.AddCounter("a_total", "A.");
  EXPECT_EQ(r.Render(), "");
  c->With({});
  EXPECT_EQ(r.Render(),
            "# HELP a_total A.\n# TYPE a_total counter\na_total 0\n");
}

TEST(MetricsTest, FamiliesAreWrittenInNameOrder) {
  Registry r;
  r.AddGauge("zeta", "Z.")->With({})->Set(1);
  r.AddGauge("alpha", "A.")->With({})->Set(2);
  const std::string text = r.Render();
  EXPECT_LT(text.find("alpha"), text.find("zeta"));
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry r;
  auto* h =
      r.AddHistogram("latency_seconds", "Latency.", {"handler"}, {0.1, 1, 10});
  Histogram* child = h->With({"create_fn"});
  child->Observe(0.05);
  child->Observe(0.1);  // A bound is inclusive.
  child->Observe(0.5);
  child->Observe(100);
  EXPECT_EQ(r.Render(),
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{handler=\"create_fn\",le=\"0.1\"} 2\n"
            "latency_seconds_bucket{handler=\"create_fn\",le=\"1\"} 3\n"
            "latency_seconds_bucket{handler=\"create_fn\",le=\"10\"} 3\n"
            "latency_seconds_bucket{handler=\"create_fn\",le=\"+Inf\"} 4\n"
            "latency_seconds_sum{handler=\"create_fn\"} 100.65\n"
            "latency_seconds_count{handler=\"create_fn\"} 4\n");
}

TEST(MetricsTest, HistogramWithoutLabels) {
  Registry r;
  auto* h = r.AddHistogram("d_seconds", "D.", {}, {1});
  h->With({})->Observe(2);
  EXPECT_EQ(r.Render(),
            "# HELP d_seconds D.\n"
            "# TYPE d_seconds histogram\n"
            "d_seconds_bucket{le=\"1\"} 0\n"
            "d_seconds_bucket{le=\"+Inf\"} 1\n"
            "d_seconds_sum 2\n"
            "d_seconds_count 1\n");
}

TEST(MetricsTest, LabelValuesAndHelpAreEscaped) {
  Registry r;
  auto* g = r.AddGauge("g", "Line one\nback\\slash \"quoted\" stays", {"v"});
  g->With({"a\"b\\c\nd"})->Set(1);
  EXPECT_EQ(r.Render(),
            "# HELP g Line one\\nback\\\\slash \"quoted\" stays\n"
            "# TYPE g gauge\n"
            "g{v=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsTest, EmptyLabelValueIsKept) {
  Registry r;
  r.AddCounter("c_total", "C.", {"resource", "handler"})
      ->With({"", "probe_fn"})
      ->Inc();
  EXPECT_NE(r.Render().find("c_total{resource=\"\",handler=\"probe_fn\"} 1\n"),
            std::string::npos);
}

TEST(MetricsTest, FormatValue) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(3), "3");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(-2.5), "-2.5");
  EXPECT_EQ(FormatValue(12345678), "12345678");
  EXPECT_EQ(FormatValue(1e21), "1e+21");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(MetricsTest, FindAndClear) {
  Registry r;
  auto* g = r.AddGauge("depth", "Depth.", {"name"});
  EXPECT_EQ(g->Find({"a"}), nullptr);
  g->With({"a"})->Set(1);
  ASSERT_NE(g->Find({"a"}), nullptr);
  EXPECT_EQ(g->Find({"a"})->Value(), 1);
  g->Clear();
  EXPECT_EQ(g->Find({"a"}), nullptr);
  EXPECT_EQ(r.Render(), "");
}

TEST(MetricsTest, ConcurrentUpdatesAreNotLost) {
  Registry r;
  auto* c = r.AddCounter("n_total", "N.", {"t"});
  auto* h = r.AddHistogram("h_seconds", "H.", {}, {0.5});
  constexpr int kThreads = 4, kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        c->With({t % 2 == 0 ? "even" : "odd"})->Inc();
        h->With({})->Observe(i % 2 == 0 ? 0.25 : 1.0);
        if (i % 1000 == 0) r.Render();  // Scrapes while updating.
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c->Find({"even"})->Value(), 2.0 * kPerThread);
  EXPECT_EQ(c->Find({"odd"})->Value(), 2.0 * kPerThread);
  const Histogram::Snapshot s = h->Find({})->Read();
  EXPECT_EQ(s.count(), static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(s.cumulative[0], static_cast<uint64_t>(kThreads * kPerThread / 2));
  EXPECT_DOUBLE_EQ(s.sum, kThreads * (kPerThread / 2) * 1.25);
}

TEST(MetricsTest, ValidateFamilyNamesWhatIsWrong) {
  EXPECT_TRUE(ValidateFamily("a:b_c1", Type::kCounter, {"x", "_y"}).ok());
  EXPECT_EQ(ValidateFamily("1abc", Type::kGauge, {}).message(),
            "'1abc' is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
  EXPECT_EQ(ValidateFamily("", Type::kGauge, {}).message(),
            "'' is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
  EXPECT_EQ(ValidateFamily("g", Type::kGauge, {"a-b"}).message(),
            "g: 'a-b' is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)");
  EXPECT_EQ(ValidateFamily("g", Type::kGauge, {"a:b"}).message(),
            "g: 'a:b' is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)");
  EXPECT_EQ(ValidateFamily("g", Type::kGauge, {"__name"}).message(),
            "g: label '__name' starts with '__', which is reserved");
  EXPECT_EQ(ValidateFamily("g", Type::kGauge, {"a", "a"}).message(),
            "g: label 'a' is given twice");
  EXPECT_TRUE(ValidateFamily("g", Type::kGauge, {"le"}).ok());
  EXPECT_EQ(ValidateFamily("h", Type::kHistogram, {"le"}, {1}).message(),
            "h: a histogram cannot have a label 'le'");
  EXPECT_EQ(ValidateFamily("h", Type::kHistogram, {}, {}).message(),
            "h: a histogram needs at least one bucket bound");
  EXPECT_EQ(ValidateFamily("h", Type::kHistogram, {}, {1, 1}).message(),
            "h: bucket bounds must increase; bound 1 (1) follows 1");
  EXPECT_EQ(ValidateFamily("h", Type::kHistogram, {},
                           {1, std::numeric_limits<double>::infinity()})
                .message(),
            "h: bucket bound 1 is not finite (+Inf is implied)");
}

TEST(MetricsDeathTest, WrongNumberOfLabelValuesAborts) {
  Registry r;
  auto* c = r.AddCounter("c_total", "C.", {"a", "b"});
  EXPECT_DEATH(c->With({"x"}),
               "c_total has 2 label\\(s\\) \\(a, b\\); given 1 value\\(s\\)");
}

TEST(MetricsDeathTest, InvalidOrDuplicateFamilyAborts) {
  Registry r;
  r.AddCounter("c_total", "C.");
  EXPECT_DEATH(r.AddGauge("c_total", "again"), "c_total is registered twice");
  EXPECT_DEATH(r.AddHistogram("h", "H.", {"le"}),
               "h: a histogram cannot have a label 'le'");
}

TEST(MetricsTest, LatencyBucketsIncrease) {
  EXPECT_TRUE(ValidateFamily("h", Type::kHistogram, {}, LatencyBuckets()).ok());
  EXPECT_EQ(LatencyBuckets().front(), 0.001);
  EXPECT_EQ(LatencyBuckets().back(), 60);
}

}  // namespace
}  // namespace herald::metrics
