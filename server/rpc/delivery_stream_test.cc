#include "server/rpc/delivery_stream.h"

#include <memory>

#include "gtest/gtest.h"

namespace herald::rpc {
namespace {

using Kind = engine::DispatchEvent::Kind;

engine::Delivery Delivery() {
  engine::Delivery d;
  d.id = 1;
  d.handler_id = "create_fn";
  d.cause = engine::Cause::kCreate;
  d.ns = "default";
  d.name = "kex-1";
  auto r = std::make_shared<kube::ResourceInfo>();
  r->group = "kopf.dev";
  r->version = "v1";
  r->plural = "kopfexamples";
  r->kind = "KopfExample";
  d.resource = r;
  return d;
}

engine::DispatchEvent Event(Kind kind, const engine::Delivery* d,
                            const engine::Outcome* o = nullptr) {
  engine::DispatchEvent e{};
  e.kind = kind;
  e.delivery = d;
  e.outcome = o;
  e.stream = 2;
  e.latency = absl::Milliseconds(12);
  return e;
}

TEST(DeliveryWantedTest, Filters) {
  const engine::Delivery d = Delivery();
  engine::Outcome o;
  const auto delivery = Event(Kind::kDelivery, &d);
  const auto outcome = Event(Kind::kOutcome, &d, &o);
  const auto requeue = Event(Kind::kRequeue, &d);

  v1::WatchDeliveriesRequest all;
  EXPECT_TRUE(DeliveryWanted(all, delivery));
  EXPECT_TRUE(DeliveryWanted(all, outcome));
  EXPECT_TRUE(DeliveryWanted(all, requeue));

  v1::WatchDeliveriesRequest outcomes;
  outcomes.set_outcomes_only(true);
  EXPECT_FALSE(DeliveryWanted(outcomes, delivery));
  EXPECT_TRUE(DeliveryWanted(outcomes, outcome));
  EXPECT_FALSE(DeliveryWanted(outcomes, requeue));

  v1::WatchDeliveriesRequest r;
  r.set_handler_id("create_fn");
  EXPECT_TRUE(DeliveryWanted(r, delivery));
  r.set_handler_id("update_fn");
  EXPECT_FALSE(DeliveryWanted(r, delivery));

  r.Clear();
  r.mutable_filter()->set_resource("KopfExample.kopf.dev");
  r.mutable_filter()->set_namespace_("default");
  r.mutable_filter()->set_name("kex-1");
  EXPECT_TRUE(DeliveryWanted(r, delivery));
  r.mutable_filter()->set_resource("pods");
  EXPECT_FALSE(DeliveryWanted(r, delivery));
  r.mutable_filter()->set_resource("kopfexamples");
  r.mutable_filter()->set_namespace_("other");
  EXPECT_FALSE(DeliveryWanted(r, delivery));
  r.mutable_filter()->set_namespace_("default");
  r.mutable_filter()->set_name("kex-2");
  EXPECT_FALSE(DeliveryWanted(r, delivery));
}

TEST(DeliveryMessageTest, DeliveriesAndOutcomes) {
  const engine::Delivery d = Delivery();
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  v1::WatchDeliveriesResponse m =
      DeliveryMessage(Event(Kind::kDelivery, &d), now);
  EXPECT_EQ(m.time().seconds(), 1700000000);
  EXPECT_EQ(m.kind(), "delivery");
  EXPECT_EQ(m.delivery_id(), "d-1");
  EXPECT_EQ(m.handler_id(), "create_fn");
  EXPECT_EQ(m.cause(), v1::CAUSE_CREATE);
  EXPECT_EQ(m.object().name(), "kex-1");
  EXPECT_EQ(m.resource().plural(), "kopfexamples");
  EXPECT_EQ(m.stream_id(), "stream-2");
  EXPECT_EQ(m.status(), "");
  EXPECT_FALSE(m.has_latency());

  engine::Outcome o;
  o.status = engine::OutcomeStatus::kTemporaryError;
  o.message = "Not ready yet.";
  m = DeliveryMessage(Event(Kind::kOutcome, &d, &o), now);
  EXPECT_EQ(m.kind(), "outcome");
  EXPECT_EQ(m.status(), "temporary_error");
  EXPECT_EQ(m.message(), "Not ready yet.");
  EXPECT_EQ(m.latency().nanos(), 12000000);

  EXPECT_EQ(DeliveryMessage(Event(Kind::kRequeue, &d), now).kind(), "requeue");
}

v1::WatchDeliveriesResponse Message(const std::string& id) {
  v1::WatchDeliveriesResponse m;
  m.set_delivery_id(id);
  return m;
}

TEST(DeliveryQueueTest, DropsWhatDoesNotFitAndSaysSoNextTime) {
  DeliveryQueue q(2);
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(q.Push(Message("1")));
  EXPECT_TRUE(q.Push(Message("2")));
  EXPECT_FALSE(q.Push(Message("3")));
  EXPECT_FALSE(q.Push(Message("4")));
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.front().delivery_id(), "1");
  EXPECT_EQ(q.front().dropped(), 0u);
  q.pop_front();
  EXPECT_TRUE(q.Push(Message("5")));
  q.pop_front();
  EXPECT_EQ(q.front().delivery_id(), "5");
  EXPECT_EQ(q.front().dropped(), 2u);
  EXPECT_TRUE(q.Push(Message("6")));
  q.pop_front();
  EXPECT_EQ(q.front().dropped(), 0u);  // Counted once.
}

}  // namespace
}  // namespace herald::rpc
