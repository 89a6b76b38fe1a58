#include "server/engine/object_writer.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/kube/api_client.h"
#include "server/kube/events.h"
#include "server/kube/http_client.h"
#include "server/kube/write_gate.h"
#include "server/runtime/clock.h"
#include "server/runtime/event_loop.h"

namespace herald::engine {
namespace {

// Answers every request with its target as the body, once `gate` opens;
// counts the requests in flight at once.
class GatedHttp : public kube::HttpClient {
 public:
  absl::StatusOr<kube::HttpResponse> Send(
      const kube::HttpRequest& request) override {
    {
      absl::MutexLock lock(&mu);
      if (closed) ++after_close;
      ++in_flight;
      max_in_flight = std::max(max_in_flight, in_flight);
    }
    gate.WaitForNotification();
    absl::MutexLock lock(&mu);
    --in_flight;
    ++sent;
    return kube::HttpResponse{200, request.target, ""};
  }
  absl::StatusOr<kube::HttpResponse> Stream(const kube::HttpRequest&,
                                            absl::Duration,
                                            const kube::DataCallback&,
                                            kube::StreamCanceller*) override {
    return absl::UnimplementedError("no streams here");
  }
  // Blocks until `n` requests are in flight at once.
  void AwaitInFlight(int n) {
    absl::MutexLock lock(&mu);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return in_flight >= n;
    };
    mu.Await(absl::Condition(&reached));
  }

  absl::Notification gate;
  absl::Mutex mu;
  int in_flight ABSL_GUARDED_BY(mu) = 0;
  int max_in_flight ABSL_GUARDED_BY(mu) = 0;
  int sent ABSL_GUARDED_BY(mu) = 0;
  // Requests that started after the writer was destroyed.
  int after_close ABSL_GUARDED_BY(mu) = 0;
  bool closed ABSL_GUARDED_BY(mu) = false;
};

kube::ResourceInfo ConfigMaps() {
  kube::ResourceInfo r;
  r.version = "v1";
  r.plural = "configmaps";
  r.kind = "ConfigMap";
  r.namespaced = true;
  return r;
}

class ObjectWriterTest : public ::testing::Test {
 protected:
  ObjectWriterTest() {
    auto http = std::make_unique<GatedHttp>();
    http_ = http.get();
    api_ = std::make_unique<kube::ApiClient>(std::move(http));
  }
  void Patch(ObjectWriter& writer, const std::string& name) {
    writer.Patch(ConfigMaps(), {"ns1", name}, kube::PatchType::kMerge, "{}",
                 false, [this](absl::StatusOr<std::string> body) {
                   ASSERT_TRUE(body.ok()) << body.status();
                   results_.push_back(*body);
                 });
  }

  GatedHttp* http_;
  std::unique_ptr<kube::ApiClient> api_;
  runtime::EventLoop loop_;
  // Loop-owned: the bodies the `done` callbacks saw.
  std::vector<std::string> results_;
};

TEST_F(ObjectWriterTest, WritesOnItsThreadsAndAnswersOnTheLoop) {
  auto writer = std::make_unique<ApiObjectWriter>(api_.get(), &loop_, 2);
  for (const char* name : {"a", "b", "c", "d"}) Patch(*writer, name);
  // Both threads are busy; the loop has run nothing, so no answer is in.
  http_->AwaitInFlight(2);
  EXPECT_TRUE(results_.empty());
  http_->gate.Notify();
  writer.reset();
  {
    absl::MutexLock lock(&http_->mu);
    EXPECT_EQ(http_->max_in_flight, 2);
    EXPECT_EQ(http_->sent, 4);
  }
  EXPECT_TRUE(results_.empty());
  EXPECT_EQ(loop_.RunUntilIdle(), 4u);
  std::sort(results_.begin(), results_.end());
  EXPECT_EQ(results_,
            (std::vector<std::string>{"/api/v1/namespaces/ns1/configmaps/a",
                                      "/api/v1/namespaces/ns1/configmaps/b",
                                      "/api/v1/namespaces/ns1/configmaps/c",
                                      "/api/v1/namespaces/ns1/configmaps/d"}));
}

TEST_F(ObjectWriterTest, DestructionDrainsQueuedWritesThenRunsNothing) {
  auto writer = std::make_unique<ApiObjectWriter>(api_.get(), &loop_, 1);
  for (const char* name : {"a", "b", "c"}) Patch(*writer, name);
  http_->AwaitInFlight(1);
  // The destructor waits for the one in flight and the two queued behind it.
  std::thread stopper([&] {
    writer.reset();
    absl::MutexLock lock(&http_->mu);
    http_->closed = true;
  });
  http_->gate.Notify();
  stopper.join();
  {
    absl::MutexLock lock(&http_->mu);
    EXPECT_EQ(http_->sent, 3);
    EXPECT_EQ(http_->after_close, 0);
  }
  EXPECT_EQ(loop_.RunUntilIdle(), 3u);
  EXPECT_EQ(results_.size(), 3u);
}

// Leader election: writes queued when the lease is lost are refused unsent,
// and the gate knows when the one on the wire has ended.
TEST_F(ObjectWriterTest, WritesQueuedAfterTheGateClosesAreNotSent) {
  runtime::FakeClock clock;
  kube::WriteGate gate(&clock);
  gate.OpenUntil(clock.Now() + absl::Seconds(10));
  auto http = std::make_unique<GatedHttp>();
  GatedHttp* wire = http.get();
  kube::ApiClient::Options o;
  o.clock = &clock;
  o.write_gate = &gate;
  kube::ApiClient api(std::move(http), o);
  auto writer = std::make_unique<ApiObjectWriter>(&api, &loop_, 1);
  std::vector<absl::Status> answers;
  for (const char* name : {"a", "b", "c"}) {
    writer->Patch(ConfigMaps(), {"ns1", name}, kube::PatchType::kMerge, "{}",
                  false, [&answers](absl::StatusOr<std::string> body) {
                    answers.push_back(body.status());
                  });
  }
  kube::InvolvedObject involved;
  involved.name = "a";
  writer->PostEvent(involved, kube::EventKind::kNormal, "Reason", "queued");
  wire->AwaitInFlight(1);
  EXPECT_FALSE(gate.WaitIdle(absl::ZeroDuration()));  // "a" is on the wire.
  gate.Close();  // The lease is lost: "b", "c" and the Event wait behind.
  wire->gate.Notify();
  writer.reset();
  EXPECT_TRUE(gate.WaitIdle(absl::ZeroDuration()));
  {
    absl::MutexLock lock(&wire->mu);
    EXPECT_EQ(wire->sent, 1);
  }
  EXPECT_EQ(gate.refused(), 3u);
  loop_.RunUntilIdle();
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_TRUE(answers[0].ok()) << answers[0];
  for (int i : {1, 2}) {
    EXPECT_EQ(answers[i].code(), absl::StatusCode::kFailedPrecondition)
        << answers[i];
  }
}

}  // namespace
}  // namespace herald::engine
