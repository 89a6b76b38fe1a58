#include "server/session/wire.h"

#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::session {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(WireTest, DeliveryIdsAreWhatTheSidecarNames) {
  EXPECT_EQ(ParseDeliveryId("d-12"), engine::DeliveryId{12});
  EXPECT_EQ(ParseDeliveryId(engine::DeliveryName(18446744073709551615u)),
            absl::nullopt);  // Twenty digits: never sent.
  EXPECT_EQ(ParseDeliveryId(engine::DeliveryName(1234567890123456789u)),
            engine::DeliveryId{1234567890123456789u});
  for (const char* bad :
       {"", "d-", "d-0", "d-+1", "d- 1", "d-1a", "x-1", "12", "D-1", "d--1"}) {
    EXPECT_EQ(ParseDeliveryId(bad), absl::nullopt) << bad;
  }
}

TEST(WireTest, DeliveriesCarryEverythingTheEngineSet) {
  auto resource = std::make_shared<kube::ResourceInfo>();
  resource->group = "kopf.dev";
  resource->version = "v1";
  resource->plural = "kopfexamples";
  resource->kind = "KopfExample";
  resource->namespaced = true;
  auto object = std::make_shared<cache::CachedObject>();
  object->json = R"({"spec":{"a":1}})";
  engine::Delivery d;
  d.id = 7;
  d.handler_id = "create_fn";
  d.cause = engine::Cause::kUpdate;
  d.resource = resource;
  d.ns = "default";
  d.name = "kex";
  d.uid = "u1";
  d.resource_version = "42";
  d.object = object;
  d.old_json = "{}";
  d.new_json = R"({"a":1})";
  d.diff_json = "[]";
  d.retry = 2;
  d.started = absl::FromUnixSeconds(1700000000);
  d.memo_json = R"({"m":1})";
  d.indices_json = {{"by_name", "[]"}};
  d.event_type = "MODIFIED";
  d.done_subhandler_ids = {"create_fn/a"};
  d.restarted = true;
  v1::Delivery w;
  w.set_handler_id("left over from a previous use");
  DeliveryToWire(d, &w);
  EXPECT_EQ(w.delivery_id(), "d-7");
  EXPECT_EQ(w.handler_id(), "create_fn");
  EXPECT_EQ(w.cause(), v1::CAUSE_UPDATE);
  EXPECT_EQ(w.resource().plural(), "kopfexamples");
  EXPECT_TRUE(w.resource().namespaced());
  EXPECT_EQ(w.object().namespace_(), "default");
  EXPECT_EQ(w.object().uid(), "u1");
  EXPECT_EQ(w.object().resource_version(), "42");
  EXPECT_EQ(w.body_json(), object->json);
  EXPECT_EQ(w.new_json(), R"({"a":1})");
  EXPECT_EQ(w.retry(), 2u);
  EXPECT_EQ(w.started().seconds(), 1700000000);
  EXPECT_EQ(w.memo_json(), R"({"m":1})");
  EXPECT_EQ(w.indices_json().at("by_name"), "[]");
  EXPECT_EQ(w.event_type(), "MODIFIED");
  EXPECT_THAT(w.done_subhandler_ids(), ElementsAre("create_fn/a"));
  EXPECT_TRUE(w.restarted());

  // An activity: about no object.
  engine::Delivery a;
  a.id = 8;
  a.handler_id = "boot";
  a.cause = engine::Cause::kStartup;
  DeliveryToWire(a, &w);
  EXPECT_FALSE(w.has_resource());
  EXPECT_FALSE(w.has_object());
  EXPECT_EQ(w.body_json(), "");
  EXPECT_FALSE(w.has_started());
}

TEST(WireTest, OutcomesAreParsedWithTheirChanges) {
  v1::Outcome o;
  o.set_status(v1::OUTCOME_STATUS_TEMPORARY_ERROR);
  o.set_message("later");
  o.mutable_delay()->set_seconds(3);
  auto* child = o.add_subhandlers();
  child->set_id("h/a");
  child->set_status(v1::OUTCOME_STATUS_SUCCESS);
  o.mutable_changes()->set_patch_json(R"({"spec":{"a":1}})");
  o.mutable_changes()->set_memo_patch_json(R"({"m":2})");
  auto* e = o.mutable_changes()->add_events();
  e->set_type(v1::EVENT_TYPE_WARNING);
  e->set_reason("Odd");
  e->set_message("odd");
  o.set_result_json(R"({"message":"hi"})");
  const engine::Outcome out = OutcomeFromWire(o, 5);
  ASSERT_TRUE(out.malformed.ok()) << out.malformed;
  EXPECT_EQ(out.delivery_id, 5u);
  EXPECT_EQ(out.status, engine::OutcomeStatus::kTemporaryError);
  EXPECT_EQ(out.message, "later");
  EXPECT_EQ(out.delay, absl::Seconds(3));
  ASSERT_EQ(out.children.size(), 1u);
  EXPECT_EQ(out.children[0].id, "h/a");
  EXPECT_EQ(out.children[0].status, engine::OutcomeStatus::kSuccess);
  EXPECT_FALSE(out.children[0].delay);
  EXPECT_EQ(out.changes.patch["spec"]["a"], 1);
  EXPECT_TRUE(out.changes.status_patch.empty());
  EXPECT_EQ(out.changes.memo_patch["m"], 2);
  ASSERT_EQ(out.changes.events.size(), 1u);
  EXPECT_EQ(out.changes.events[0].type, engine::EventType::kWarning);
  EXPECT_EQ(out.changes.events[0].reason, "Odd");
  EXPECT_EQ(out.result["message"], "hi");
  EXPECT_TRUE(OutcomeFromWire(v1::Outcome(), 1).result.is_null());
}

TEST(WireTest, ChangesMustBeJsonObjects) {
  v1::Outcome o;
  o.mutable_changes()->set_patch_json(R"({"spec":{"a":1}})");
  o.mutable_changes()->set_status_patch_json("[1]");
  engine::Outcome out = OutcomeFromWire(o, 1);
  EXPECT_THAT(std::string(out.malformed.message()),
              HasSubstr("status_patch_json is not a JSON object: [1]"));
  // Nothing of a malformed outcome is taken.
  EXPECT_TRUE(out.changes.patch.empty());

  o.mutable_changes()->clear_status_patch_json();
  o.set_result_json("{oops");
  out = OutcomeFromWire(o, 1);
  EXPECT_THAT(std::string(out.malformed.message()),
              HasSubstr("result_json is not JSON"));
  EXPECT_TRUE(out.result.is_null());
  EXPECT_TRUE(out.changes.patch.empty());

  v1::ObjectChanges c;
  c.set_memo_patch_json("3");
  EXPECT_THAT(std::string(ChangesFromWire(c).status().message()),
              HasSubstr("memo_patch_json is not a JSON object: 3"));
}

// The engine's enums carry herald.v1's numbers, so the session converts
// them with a cast; their names are the wire's, lower-case, unprefixed.
TEST(WireTest, EngineEnumsMatchTheWire) {
  for (int i = 0; i < v1::OutcomeStatus_ARRAYSIZE; ++i) {
    const auto status = static_cast<v1::OutcomeStatus>(i);
    EXPECT_EQ(
        engine::OutcomeStatusName(static_cast<engine::OutcomeStatus>(status)),
        absl::AsciiStrToLower(absl::StripPrefix(v1::OutcomeStatus_Name(status),
                                                "OUTCOME_STATUS_")));
  }
  EXPECT_EQ(engine::OutcomeStatusName(static_cast<engine::OutcomeStatus>(999)),
            "unspecified");
  EXPECT_EQ(v1::OutcomeStatus_ARRAYSIZE, engine::kOutcomeStatusCount);
  EXPECT_EQ(static_cast<int>(engine::StopReason::kFilterMismatch),
            v1::STOP_REASON_FILTER_MISMATCH);
  EXPECT_EQ(static_cast<int>(engine::StopReason::kShutdown),
            v1::STOP_REASON_SHUTDOWN);
  EXPECT_EQ(v1::StopReason_ARRAYSIZE, 5);
  EXPECT_EQ(static_cast<int>(engine::EventType::kWarning),
            v1::EVENT_TYPE_WARNING);
  EXPECT_EQ(v1::EventType_ARRAYSIZE, 3);
}

TEST(WireTest, MessagesTheSidecarSends) {
  engine::RegistrationAnswer answer;
  answer.accepted = {"a", "p"};
  answer.rejected = {{"r", "bad"}};
  answer.pending = {{"p", "no such resource yet"}};
  v1::ConnectResponse m = RegisteredMessage(answer, 4, 1024, "1.2.3");
  EXPECT_EQ(m.registered().stream_id(), "stream-4");
  EXPECT_EQ(m.registered().max_message_bytes(), 1024u);
  EXPECT_EQ(m.registered().sidecar_version(), "1.2.3");
  EXPECT_THAT(m.registered().accepted_handler_ids(), ElementsAre("a", "p"));
  EXPECT_EQ(m.registered().rejections(0).reason(), "bad");
  EXPECT_EQ(m.registered().pending(0).handler_id(), "p");
  EXPECT_EQ(AckMessage(9).outcome_ack().delivery_id(), "d-9");
  m = StopMessage(9, engine::StopReason::kObjectDeleted, true);
  EXPECT_EQ(m.stop().delivery_id(), "d-9");
  EXPECT_EQ(m.stop().reason(), v1::STOP_REASON_OBJECT_DELETED);
  EXPECT_TRUE(m.stop().force());
  EXPECT_EQ(WireCode(engine::StreamError::kNotRegistered),
            v1::PROTOCOL_ERROR_CODE_NOT_REGISTERED);
  EXPECT_EQ(WireCode(engine::StreamError::kUnknownDelivery),
            v1::PROTOCOL_ERROR_CODE_UNKNOWN_DELIVERY);
  EXPECT_EQ(WireCode(engine::StreamError::kDuplicateOutcome),
            v1::PROTOCOL_ERROR_CODE_DUPLICATE_OUTCOME);
  EXPECT_EQ(WireCode(engine::StreamError::kMalformedJson),
            v1::PROTOCOL_ERROR_CODE_MALFORMED_JSON);
  EXPECT_EQ(WireCode(engine::StreamError::kPatchRejected),
            v1::PROTOCOL_ERROR_CODE_PATCH_REJECTED);
  EXPECT_EQ(WireCode(engine::StreamError::kInvalidArgument),
            v1::PROTOCOL_ERROR_CODE_INVALID_ARGUMENT);
}

}  // namespace
}  // namespace herald::session
