#include "server/session/handler_session.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/kube/fake_http_client.h"

namespace herald::session {
namespace {

using ::testing::HasSubstr;

// An engine with no resources: discovery answers with empty lists, so the
// session's rules are what the tests see.
struct Fixture {
  Fixture() {
    auto http = std::make_unique<kube::FakeHttpClient>();
    http->AddJson("/api", R"({"kind":"APIVersions","versions":[]})");
    http->AddJson("/apis", R"({"kind":"APIGroupList","groups":[]})");
    api = kube::TestApiClient(std::move(http), runtime::Clock::Real());
    discovery = std::make_unique<kube::Discovery>(api.get());
    engine::Engine::Options options;
    options.max_message_bytes = 1024;
    options.version = "9.9.9";
    engine =
        std::make_unique<engine::Engine>(api.get(), discovery.get(), options);
    engine->Start();
    session = HandlerSession::Create(engine.get(), "peer-1",
                                     [this](v1::ConnectResponse m) {
                                       absl::MutexLock lock(&mu);
                                       written.push_back(std::move(m));
                                     });
  }
  ~Fixture() {
    session->Close();
    engine->Stop();
  }
  // The messages written so far, once there are at least `n`.
  std::vector<v1::ConnectResponse> Written(size_t n) {
    absl::MutexLock lock(&mu);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return written.size() >= n;
    };
    mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
    return written;
  }
  v1::ProtocolError LastError(size_t n) {
    auto w = Written(n);
    EXPECT_GE(w.size(), n);
    if (w.size() < n || !w[n - 1].has_protocol_error()) {
      ADD_FAILURE() << "no protocol error as message " << n;
      return v1::ProtocolError();
    }
    return w[n - 1].protocol_error();
  }

  std::unique_ptr<kube::ApiClient> api;
  std::unique_ptr<kube::Discovery> discovery;
  std::unique_ptr<engine::Engine> engine;
  std::shared_ptr<HandlerSession> session;
  absl::Mutex mu;
  std::vector<v1::ConnectResponse> written ABSL_GUARDED_BY(mu);
};

v1::ConnectRequest Register(uint32_t credits) {
  v1::ConnectRequest r;
  r.mutable_register_()->set_process_name("p");
  r.mutable_register_()->set_credits(credits);
  return r;
}

TEST(HandlerSessionTest, RegisterComesFirstAndOnce) {
  Fixture f;
  v1::ConnectRequest credits;
  credits.mutable_set_credits()->set_credits(3);
  f.session->Handle(credits);
  EXPECT_EQ(f.LastError(1).code(), v1::PROTOCOL_ERROR_CODE_NOT_REGISTERED);

  // Zero credits: refused, and the stream may register again.
  f.session->Handle(Register(0));
  v1::ProtocolError e = f.LastError(2);
  EXPECT_EQ(e.code(), v1::PROTOCOL_ERROR_CODE_INVALID_ARGUMENT);
  EXPECT_THAT(e.message(), HasSubstr("credits must be at least 1"));

  f.session->Handle(Register(2));
  auto w = f.Written(3);
  ASSERT_EQ(w.size(), 3u);
  ASSERT_TRUE(w[2].has_registered());
  EXPECT_EQ(w[2].registered().stream_id(), f.session->name());
  EXPECT_EQ(w[2].registered().max_message_bytes(), 1024u);
  EXPECT_EQ(w[2].registered().sidecar_version(), "9.9.9");

  f.session->Handle(Register(2));
  EXPECT_EQ(f.LastError(4).code(), v1::PROTOCOL_ERROR_CODE_ALREADY_REGISTERED);
}

TEST(HandlerSessionTest, EmptyOversizedAndUnknownMessagesAreRefused) {
  Fixture f;
  f.session->Handle(v1::ConnectRequest());
  EXPECT_THAT(f.LastError(1).message(), HasSubstr("empty message"));

  v1::ConnectRequest big;
  big.mutable_outcome()->set_delivery_id("d-1");
  big.mutable_outcome()->set_message(std::string(2000, 'x'));
  f.session->Handle(big);
  v1::ProtocolError e = f.LastError(2);
  EXPECT_EQ(e.code(), v1::PROTOCOL_ERROR_CODE_MESSAGE_TOO_LARGE);
  EXPECT_EQ(e.delivery_id(), "d-1");
  EXPECT_THAT(e.message(), HasSubstr("exceeds the limit of 1024 bytes"));

  f.session->Handle(Register(1));
  ASSERT_TRUE(f.Written(3)[2].has_registered());
  // A delivery id the sidecar never sends, and one it did not send on this
  // stream.
  v1::ConnectRequest outcome;
  outcome.mutable_outcome()->set_delivery_id("not-a-delivery");
  f.session->Handle(outcome);
  e = f.LastError(4);
  EXPECT_EQ(e.code(), v1::PROTOCOL_ERROR_CODE_UNKNOWN_DELIVERY);
  EXPECT_EQ(e.delivery_id(), "not-a-delivery");
  outcome.mutable_outcome()->set_delivery_id("d-77");
  f.session->Handle(outcome);
  e = f.LastError(5);
  EXPECT_EQ(e.code(), v1::PROTOCOL_ERROR_CODE_UNKNOWN_DELIVERY);
  EXPECT_THAT(e.message(), HasSubstr("'d-77' is not in flight"));
  v1::ConnectRequest interim;
  interim.mutable_interim_changes()->set_delivery_id("d-77");
  interim.mutable_interim_changes()->mutable_changes()->set_patch_json("[1]");
  f.session->Handle(interim);
  // Unknown first: its changes are not looked at.
  EXPECT_EQ(f.LastError(6).code(), v1::PROTOCOL_ERROR_CODE_UNKNOWN_DELIVERY);
}

// An outcome is acknowledged on the thread that read it, before the engine
// sees it; the session itself refuses repeated and forgotten ones.
TEST(HandlerSessionTest, OutcomesAreAckedAsTheyAreRead) {
  Fixture f;
  f.session->Handle(Register(2));
  ASSERT_TRUE(f.Written(1)[0].has_registered());
  engine::Delivery d;
  d.id = 5;
  d.handler_id = "h";
  d.cause = engine::Cause::kCreate;
  f.session->Deliver(d);  // As the engine's dispatcher would.
  ASSERT_EQ(f.Written(2)[1].delivery().delivery_id(), "d-5");

  v1::ConnectRequest outcome;
  outcome.mutable_outcome()->set_delivery_id("d-5");
  outcome.mutable_outcome()->set_status(v1::OUTCOME_STATUS_SUCCESS);
  f.session->Handle(outcome);
  {
    // Written before Handle returned.
    absl::MutexLock lock(&f.mu);
    ASSERT_EQ(f.written.size(), 3u);
    EXPECT_EQ(f.written[2].outcome_ack().delivery_id(), "d-5");
  }
  f.session->Handle(outcome);
  v1::ProtocolError e = f.LastError(4);
  EXPECT_EQ(e.code(), v1::PROTOCOL_ERROR_CODE_DUPLICATE_OUTCOME);
  EXPECT_THAT(e.message(), HasSubstr("'d-5' was already answered"));

  d.id = 6;
  f.session->Deliver(d);
  f.session->Forget(6);  // The engine stopped waiting for it.
  outcome.mutable_outcome()->set_delivery_id("d-6");
  f.session->Handle(outcome);
  EXPECT_EQ(f.LastError(6).code(), v1::PROTOCOL_ERROR_CODE_UNKNOWN_DELIVERY);
}

TEST(HandlerSessionTest, NothingIsWrittenAfterClose) {
  Fixture f;
  f.session->Close();
  // Refused at once, on this thread: a refusal would be written now.
  f.session->Handle(v1::ConnectRequest());
  EXPECT_TRUE(f.Written(0).empty());
}

}  // namespace
}  // namespace herald::session
