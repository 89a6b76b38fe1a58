#include "server/metrics/herald_metrics.h"

#include "gtest/gtest.h"

namespace herald::metrics {
namespace {

TEST(HeraldMetricsTest, NothingIsExportedBeforeItIsUsed) {
  HeraldMetrics m;
  EXPECT_EQ(m.Render(), "");
}

TEST(HeraldMetricsTest, LeaderStatusIsExportedOnceSet) {
  HeraldMetrics m;
  EXPECT_EQ(m.Render().find("leader_election_master_status"),
            std::string::npos);
  m.SetLeader("herald-kopfexamples", true);
  EXPECT_NE(m.Render().find(
                "leader_election_master_status{name=\"herald-kopfexamples\"} "
                "1\n"),
            std::string::npos);
  m.SetLeader("herald-kopfexamples", false);
  EXPECT_NE(m.Render().find(
                "leader_election_master_status{name=\"herald-kopfexamples\"} "
                "0\n"),
            std::string::npos);
}

TEST(HeraldMetricsTest, ControllerRuntimeNamesAndLabels) {
  HeraldMetrics m;
  m.reconcile_total->With({"kopfexamples.v1.kopf.dev", "success"})->Inc();
  m.reconcile_time_seconds->With({"kopfexamples.v1.kopf.dev"})->Observe(0.2);
  m.workqueue_depth->With({"kopfexamples.v1.kopf.dev"})->Set(0);
  m.rest_client_requests_total->With({"200", "GET", "127.0.0.1:6443"})->Inc();
  const std::string text = m.Render();
  EXPECT_NE(text.find("# TYPE controller_runtime_reconcile_total counter\n"
                      "controller_runtime_reconcile_total{controller="
                      "\"kopfexamples.v1.kopf.dev\",result=\"success\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("controller_runtime_reconcile_time_seconds_bucket{"
                      "controller=\"kopfexamples.v1.kopf.dev\",le=\"0.25\"} "
                      "1\n"),
            std::string::npos);
  EXPECT_NE(text.find("workqueue_depth{name=\"kopfexamples.v1.kopf.dev\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("rest_client_requests_total{code=\"200\",method=\"GET\","
                      "host=\"127.0.0.1:6443\"} 1\n"),
            std::string::npos);
}

}  // namespace
}  // namespace herald::metrics
