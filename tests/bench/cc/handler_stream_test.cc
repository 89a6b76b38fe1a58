#include "tests/bench/cc/handler_stream.h"

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/bench/cc/sent_ns.h"

namespace herald::bench {
namespace {

using Stream =
    grpc::ServerReaderWriter<v1::ConnectResponse, v1::ConnectRequest>;

// A sidecar that plays one script per stream: answer the registration
// (accept or reject), send a protocol error and `deliveries` deliveries at
// once (every other one stamped with sent-ns), then ack each outcome; with
// `close_after_sending`, end the stream instead of waiting for outcomes.
class FakeSidecar : public v1::HandlerService::Service {
 public:
  bool reject = false;
  bool close_after_sending = false;
  int deliveries = 3;

  grpc::Status Connect(grpc::ServerContext* context, Stream* stream) override {
    v1::ConnectRequest req;
    if (!stream->Read(&req) || !req.has_register_()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no register");
    }
    const std::string id = req.register_().handlers(0).id();
    {
      absl::MutexLock lock(&mu_);
      register_ = req.register_();
    }
    v1::ConnectResponse r;
    if (reject) {
      auto* rej = r.mutable_registered()->add_rejections();
      rej->set_handler_id(id);
      rej->set_reason("unknown resource");
      stream->Write(r);
      // Held open: the client must end the call itself.
      while (stream->Read(&req)) {
      }
      return grpc::Status::OK;
    }
    r.mutable_registered()->set_stream_id("stream-1");
    r.mutable_registered()->add_accepted_handler_ids(id);
    stream->Write(r);
    r.mutable_protocol_error()->set_code(
        v1::PROTOCOL_ERROR_CODE_INVALID_ARGUMENT);
    r.mutable_protocol_error()->set_message("a test");
    stream->Write(r);
    for (int i = 0; i < deliveries; ++i) {
      auto* d = r.mutable_delivery();
      d->set_delivery_id(absl::StrCat("d-", i));
      d->set_handler_id(id);
      d->set_body_json(i % 2 == 0
                           ? absl::StrCat(R"({"metadata":{"annotations":{")",
                                          kSentNsAnnotation, R"(":")",
                                          RealtimeNs() - 5000, R"("}}})")
                           : std::string(R"({"metadata":{"name":"x"}})"));
      stream->Write(r);
    }
    if (close_after_sending) return grpc::Status::OK;
    while (stream->Read(&req)) {
      if (!req.has_outcome()) continue;
      {
        absl::MutexLock lock(&mu_);
        outcomes_.push_back(req.outcome());
      }
      r.mutable_outcome_ack()->set_delivery_id(req.outcome().delivery_id());
      stream->Write(r);
    }
    return grpc::Status::OK;
  }

  v1::Register registered() {
    absl::MutexLock lock(&mu_);
    return register_;
  }
  std::vector<v1::Outcome> outcomes() {
    absl::MutexLock lock(&mu_);
    return outcomes_;
  }

 private:
  absl::Mutex mu_;
  v1::Register register_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::Outcome> outcomes_ ABSL_GUARDED_BY(mu_);
};

class HandlerStreamTest : public ::testing::Test {
 protected:
  void Start() {
    // A real socket: the in-process transport completes a write only when
    // the peer reads it, which no real transport does.
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&sidecar_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port, 0);
    stub_ = v1::HandlerService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  StreamOptions Options() {
    StreamOptions o;
    o.handler.process_name = "test";
    o.handler.resource = "widgets";
    o.handler.handler_id = "bench";
    o.handler.labels = {{"shard", "3"}};
    o.handler.credits = 8;
    return o;
  }

  FakeSidecar sidecar_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::HandlerService::Stub> stub_;
  std::ostringstream log_;
};

TEST_F(HandlerStreamTest, AnswersEveryDeliveryAndTimesIt) {
  Start();
  StreamOptions o = Options();
  o.status_patch_json = R"({"bench":{"done":true}})";
  o.exit_after = 3;
  HandlerStats stats;
  grpc::ClientContext context;
  StreamResult r = ServeHandlerStream(*stub_, &context, o, &stats, log_);
  EXPECT_EQ(r.end, StreamEnd::kExitAfter);

  EXPECT_EQ(sidecar_.registered().credits(), 8u);
  EXPECT_EQ(sidecar_.registered().handlers(0).labels().at("shard").value(),
            "3");
  auto outcomes = sidecar_.outcomes();
  ASSERT_EQ(outcomes.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(outcomes[i].delivery_id(), absl::StrCat("d-", i));
    EXPECT_EQ(outcomes[i].status(), v1::OUTCOME_STATUS_SUCCESS);
    EXPECT_EQ(outcomes[i].changes().status_patch_json(),
              R"({"bench":{"done":true}})");
  }
  EXPECT_EQ(stats.deliveries(), 3u);
  EXPECT_EQ(stats.acks(), 3u);
  EXPECT_EQ(stats.protocol_errors(), 1u);
  EXPECT_EQ(stats.in_flight(), 0u);
  const std::string json = stats.ToJson();
  // d-0 and d-2 carry sent-ns: two event-to-handler and round-trip samples,
  // three outcome-to-ack samples.
  EXPECT_NE(json.find("\"without_sent_ns\": 1"), std::string::npos) << json;
  EXPECT_NE(log_.str().find("registered as stream-1"), std::string::npos);
  EXPECT_NE(log_.str().find("PROTOCOL_ERROR_CODE_INVALID_ARGUMENT"),
            std::string::npos);
}

TEST_F(HandlerStreamTest, ReportsARejectedHandler) {
  sidecar_.reject = true;
  Start();
  HandlerStats stats;
  grpc::ClientContext context;
  StreamResult r =
      ServeHandlerStream(*stub_, &context, Options(), &stats, log_);
  EXPECT_EQ(r.end, StreamEnd::kRejected);
  EXPECT_NE(log_.str().find("'bench' rejected: unknown resource"),
            std::string::npos)
      << log_.str();
}

TEST_F(HandlerStreamTest, StallingHoldsDeliveriesUntilTheStreamEnds) {
  sidecar_.close_after_sending = true;
  sidecar_.deliveries = 5;
  Start();
  StreamOptions o = Options();
  o.stall = true;
  HandlerStats stats;
  grpc::ClientContext context;
  StreamResult r = ServeHandlerStream(*stub_, &context, o, &stats, log_);
  EXPECT_EQ(r.end, StreamEnd::kEnded);
  EXPECT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(stats.deliveries(), 5u);
  EXPECT_EQ(stats.acks(), 0u);
  EXPECT_TRUE(sidecar_.outcomes().empty());
}

}  // namespace
}  // namespace herald::bench
