// What counting and scraping cost (server/metrics): a counter's Inc through a
// child pointer kept by the caller (the engine's way), a child looked up by
// label values on each call, a histogram observation, and rendering a
// registry as big as a busy sidecar's.
//
//   bazel run -c opt //tests/bench/cc:metrics_benchmark
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "server/metrics/herald_metrics.h"

namespace herald::metrics {
namespace {

void BM_CounterIncCachedChild(benchmark::State& state) {
  HeraldMetrics m;
  Counter* c = m.deliveries_total->With(
      {"kopfexamples.v1.kopf.dev", "create_fn", "create"});
  for (auto _ : state) c->Inc();
  benchmark::DoNotOptimize(c->Value());
}
BENCHMARK(BM_CounterIncCachedChild);

void BM_CounterIncLookedUp(benchmark::State& state) {
  HeraldMetrics m;
  const std::string resource = "kopfexamples.v1.kopf.dev";
  for (auto _ : state) {
    m.deliveries_total->With({resource, "create_fn", "create"})->Inc();
  }
}
BENCHMARK(BM_CounterIncLookedUp);

void BM_HistogramObserve(benchmark::State& state) {
  HeraldMetrics m;
  Histogram* h = m.handler_duration_seconds->With({"create_fn"});
  double v = 0.0001;
  for (auto _ : state) {
    h->Observe(v);
    v = v > 30 ? 0.0001 : v * 1.7;
  }
}
BENCHMARK(BM_HistogramObserve);

// state.range(0) handlers on 10 resources: a histogram per handler and per
// resource, counters per handler and cause.
void BM_Render(benchmark::State& state) {
  HeraldMetrics m;
  const int handlers = static_cast<int>(state.range(0));
  for (int i = 0; i < handlers; ++i) {
    const std::string resource = absl::StrCat("r", i % 10, ".v1.example.com");
    const std::string handler = absl::StrCat("handler_", i);
    m.deliveries_total->With({resource, handler, "create"})->Inc(i);
    m.handler_duration_seconds->With({handler})->Observe(0.01 * i);
    m.reconcile_total->With({resource, "success"})->Inc();
    m.reconcile_time_seconds->With({resource})->Observe(0.02);
  }
  size_t bytes = 0;
  for (auto _ : state) bytes = m.Render().size();
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Render)->Arg(10)->Arg(100)->Arg(1000);

}  // namespace
}  // namespace herald::metrics

BENCHMARK_MAIN();
