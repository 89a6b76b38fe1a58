// Checks the rules of the herald.v1 wire contract that its descriptors can
// show: every enum starts with an UNSPECIFIED zero value, an empty outcome is
// not a success, and the handler stream is one bidirectional call.

#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "herald/v1/handler.grpc.pb.h"
#include "herald/v1/inspection.grpc.pb.h"
#include "herald/v1/resource.pb.h"

namespace herald::v1 {
namespace {

using ::google::protobuf::EnumDescriptor;
using ::google::protobuf::FileDescriptor;
using ::testing::StartsWith;

std::string UpperSnake(const std::string& camel) {
  std::string out;
  for (size_t i = 0; i < camel.size(); ++i) {
    if (i > 0 && isupper(camel[i])) out += '_';
    out += static_cast<char>(toupper(camel[i]));
  }
  return out;
}

void CheckEnum(const EnumDescriptor* e) {
  SCOPED_TRACE(e->full_name());
  const std::string prefix = UpperSnake(e->name()) + "_";
  ASSERT_GT(e->value_count(), 0);
  EXPECT_EQ(e->value(0)->number(), 0);
  EXPECT_EQ(e->value(0)->name(), prefix + "UNSPECIFIED");
  for (int i = 0; i < e->value_count(); ++i) {
    EXPECT_THAT(e->value(i)->name(), StartsWith(prefix));
  }
}

void CheckFileEnums(const FileDescriptor* file) {
  for (int i = 0; i < file->enum_type_count(); ++i)
    CheckEnum(file->enum_type(i));
  for (int i = 0; i < file->message_type_count(); ++i) {
    const auto* m = file->message_type(i);
    for (int j = 0; j < m->enum_type_count(); ++j) CheckEnum(m->enum_type(j));
  }
}

TEST(ContractTest, EveryEnumStartsWithUnspecified) {
  CheckFileEnums(Cause_descriptor()->file());
  CheckFileEnums(Outcome::descriptor()->file());
  CheckFileEnums(GetStatusRequest::descriptor()->file());
}

TEST(ContractTest, AnEmptyOutcomeIsNotASuccess) {
  Outcome outcome;
  EXPECT_EQ(outcome.status(), OUTCOME_STATUS_UNSPECIFIED);
  EXPECT_NE(outcome.status(), OUTCOME_STATUS_SUCCESS);
}

TEST(ContractTest, OutcomeSurvivesTheWire) {
  Outcome outcome;
  outcome.set_delivery_id("d-42");
  outcome.set_status(OUTCOME_STATUS_TEMPORARY_ERROR);
  outcome.mutable_delay()->set_seconds(5);
  outcome.mutable_changes()->set_patch_json(R"({"spec":{"x":1}})");
  auto* event = outcome.mutable_changes()->add_events();
  event->set_type(EVENT_TYPE_WARNING);
  event->set_reason("NotReady");

  ConnectRequest request;
  *request.mutable_outcome() = outcome;
  ConnectRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(request.SerializeAsString()));
  ASSERT_EQ(parsed.message_case(), ConnectRequest::kOutcome);
  EXPECT_EQ(parsed.outcome().delivery_id(), "d-42");
  EXPECT_EQ(parsed.outcome().delay().seconds(), 5);
  EXPECT_EQ(parsed.outcome().changes().events(0).reason(), "NotReady");
}

TEST(ContractTest, HandlerStreamIsOneBidirectionalCall) {
  const auto* service = HandlerService::service_full_name();
  const auto* desc =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          service);
  ASSERT_NE(desc, nullptr);
  ASSERT_EQ(desc->method_count(), 1);
  EXPECT_TRUE(desc->method(0)->client_streaming());
  EXPECT_TRUE(desc->method(0)->server_streaming());
}

}  // namespace
}  // namespace herald::v1
