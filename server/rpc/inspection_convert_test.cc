#include "server/rpc/inspection_convert.h"

#include "gtest/gtest.h"
#include "server/engine/test_resources.h"
#include "server/runtime/proto_time.h"

namespace herald::rpc {
namespace {

using ::herald::engine::testing::Kex;
using runtime::ToProtoTime;

const absl::Time kT1 = absl::FromUnixSeconds(1700000000);
const absl::Time kT2 = absl::FromUnixSeconds(1700000300);

TEST(ConvertTest, Status) {
  engine::StatusSnapshot s{"1.2.3", kT1, true, "https://api:6443",
                           "herald.dev"};
  const v1::GetStatusResponse m = ToProto(s);
  EXPECT_EQ(m.version(), "1.2.3");
  EXPECT_EQ(m.started().seconds(), 1700000000);
  EXPECT_TRUE(m.ready());
  EXPECT_EQ(m.api_server(), "https://api:6443");
  EXPECT_EQ(m.annotation_prefix(), "herald.dev");
  EXPECT_FALSE(m.has_leader_election());  // Election off.
}

TEST(ConvertTest, StatusWithLeaderElection) {
  engine::StatusSnapshot s;
  s.leadership.enabled = true;
  s.leadership.leading = false;
  s.leadership.identity = "herald-b";
  s.leadership.holder = "herald-a";
  s.leadership.lease_namespace = "ops";
  s.leadership.lease_name = "herald";
  const v1::GetStatusResponse m = ToProto(s);
  ASSERT_TRUE(m.has_leader_election());
  EXPECT_FALSE(m.leader_election().leading());
  EXPECT_EQ(m.leader_election().identity(), "herald-b");
  EXPECT_EQ(m.leader_election().holder(), "herald-a");
  EXPECT_EQ(m.leader_election().lease_namespace(), "ops");
  EXPECT_EQ(m.leader_election().lease_name(), "herald");
}

engine::ResourceSnapshot Watching() {
  engine::ResourceSnapshot s;
  s.name = "kopfexamples.v1.kopf.dev";
  s.state = kube::ResourceWatch::State::kWatching;
  s.resource = Kex();
  s.synced = true;
  s.scope = "team-*";
  s.object_count = 7;
  s.health.resource_version = "205";
  s.health.last_error = "2026-11-24T15:22:37Z listing failed";
  s.last_event = kT1;
  return s;
}

TEST(ConvertTest, AWatchingResource) {
  v1::WatchedResource m;
  ToProto(Watching(), &m);
  EXPECT_EQ(m.resource().group(), "kopf.dev");
  EXPECT_EQ(m.resource().version(), "v1");
  EXPECT_EQ(m.resource().plural(), "kopfexamples");
  EXPECT_EQ(m.resource().kind(), "KopfExample");
  EXPECT_TRUE(m.resource().namespaced());
  EXPECT_EQ(m.state(), v1::WATCH_STATE_WATCHING);
  EXPECT_EQ(m.scope(), "team-*");
  EXPECT_EQ(m.object_count(), 7u);
  EXPECT_EQ(m.resource_version(), "205");
  EXPECT_EQ(m.last_error(), "2026-11-24T15:22:37Z listing failed");
  EXPECT_EQ(m.last_event().seconds(), 1700000000);
}

TEST(ConvertTest, WatchStates) {
  using State = kube::ResourceWatch::State;
  struct Case {
    State state;
    bool synced, backing_off;
    v1::WatchState want;
  };
  const Case cases[] = {
      {State::kWatching, true, false, v1::WATCH_STATE_WATCHING},
      {State::kWatching, false, false, v1::WATCH_STATE_LISTING},
      {State::kWatching, true, true, v1::WATCH_STATE_BACKING_OFF},
      {State::kWatching, false, true, v1::WATCH_STATE_BACKING_OFF},
      {State::kWaitingForResource, false, false,
       v1::WATCH_STATE_WAITING_FOR_RESOURCE},
      {State::kWaitingForResource, false, true,
       v1::WATCH_STATE_WAITING_FOR_RESOURCE},
      {State::kResolving, false, true, v1::WATCH_STATE_BACKING_OFF},
      {State::kResolving, false, false, v1::WATCH_STATE_UNSPECIFIED},
      {State::kStopped, false, false, v1::WATCH_STATE_UNSPECIFIED},
  };
  for (const Case& c : cases) {
    engine::ResourceSnapshot s = Watching();
    s.state = c.state;
    s.synced = c.synced;
    s.health.backing_off = c.backing_off;
    v1::WatchedResource m;
    ToProto(s, &m);
    EXPECT_EQ(m.state(), c.want)
        << static_cast<int>(c.state) << " " << c.synced << " " << c.backing_off;
  }
}

TEST(ConvertTest, AResourceNotResolvedYetShowsTheNameAskedFor) {
  engine::ResourceSnapshot s;
  s.name = "widgets";
  s.state = kube::ResourceWatch::State::kWaitingForResource;
  v1::WatchedResource m;
  ToProto(s, &m);
  EXPECT_TRUE(m.has_resource());
  EXPECT_EQ(m.resource().plural(), "widgets");
  EXPECT_EQ(m.resource().kind(), "");
  EXPECT_FALSE(m.has_last_event());
  EXPECT_EQ(m.object_count(), 0u);
}

TEST(ConvertTest, ARegisteredHandler) {
  engine::HandlerSnapshot s;
  s.handler_id = "create_fn";
  s.resource_name = "kex";
  s.resource = Kex();
  s.cause = engine::Cause::kCreate;
  s.process_count = 2;
  s.stats = {5, 3, 1, 1};
  s.latency_p50 = absl::Milliseconds(10);
  s.latency_p99 = absl::Milliseconds(250);
  v1::HandlerInfo m;
  ToProto(s, &m);
  EXPECT_EQ(m.handler_id(), "create_fn");
  EXPECT_EQ(m.resource_name(), "kex");
  EXPECT_EQ(m.resource().plural(), "kopfexamples");
  EXPECT_EQ(m.cause(), v1::CAUSE_CREATE);
  EXPECT_EQ(m.process_count(), 2u);
  EXPECT_EQ(m.deliveries(), 5u);
  EXPECT_EQ(m.successes(), 3u);
  EXPECT_EQ(m.temporary_failures(), 1u);
  EXPECT_EQ(m.permanent_failures(), 1u);
  EXPECT_EQ(m.latency_p50().nanos(), 10000000);
  EXPECT_EQ(m.latency_p99().nanos(), 250000000);
  EXPECT_EQ(m.pending_reason(), "");
}

TEST(ConvertTest, HandlersWithoutResourceOrLatency) {
  // An activity: registered, with an empty resource (shown as {}).
  engine::HandlerSnapshot activity;
  activity.handler_id = "startup_fn";
  activity.resource = kube::ResourceInfo();
  activity.cause = engine::Cause::kStartup;
  v1::HandlerInfo m;
  ToProto(activity, &m);
  EXPECT_TRUE(m.has_resource());
  EXPECT_FALSE(m.has_latency_p50());
  EXPECT_FALSE(m.has_latency_p99());
  // Pending: no resource at all, and the reason.
  engine::HandlerSnapshot pending;
  pending.handler_id = "later_fn";
  pending.resource_name = "widgets";
  pending.cause = engine::Cause::kCreate;
  pending.pending_reason = "widgets: not found";
  pending.process_count = 1;
  v1::HandlerInfo p;
  ToProto(pending, &p);
  EXPECT_FALSE(p.has_resource());
  EXPECT_EQ(p.resource_name(), "widgets");
  EXPECT_EQ(p.pending_reason(), "widgets: not found");
  EXPECT_EQ(p.process_count(), 1u);
}

TEST(ConvertTest, AProcess) {
  engine::ProcessSnapshot s;
  s.stream = 3;
  s.process_name = "op";
  s.client = "herald-python/0.1";
  s.peer = "unix:";
  s.connected = kT1;
  s.credits = 4;
  s.handler_ids = {"a", "b"};
  s.in_flight = {1};
  v1::ProcessInfo m;
  ToProto(s, &m);
  EXPECT_EQ(m.stream_id(), "stream-3");
  EXPECT_EQ(m.process_name(), "op");
  EXPECT_EQ(m.client(), "herald-python/0.1");
  EXPECT_EQ(m.peer(), "unix:");
  EXPECT_EQ(m.connected().seconds(), 1700000000);
  EXPECT_EQ(m.credits(), 4u);
  ASSERT_EQ(m.handler_ids_size(), 2);
  EXPECT_EQ(m.handler_ids(1), "b");
  ASSERT_EQ(m.in_flight_delivery_ids_size(), 1);
  EXPECT_EQ(m.in_flight_delivery_ids(0), "d-1");
}

TEST(ConvertTest, QueuesTimersAndDaemons) {
  engine::QueueSnapshot q;
  q.resource = Kex();
  q.key = {"default", "kex-1"};
  q.delivery = 1;
  q.handler_id = "create_fn";
  q.purpose = "create";
  q.pending = true;
  q.queued_events = 3;
  q.waiting_for_indices = true;
  v1::ObjectQueue qm;
  ToProto(q, &qm);
  EXPECT_EQ(qm.object().namespace_(), "default");
  EXPECT_EQ(qm.object().name(), "kex-1");
  EXPECT_EQ(qm.resource().plural(), "kopfexamples");
  EXPECT_EQ(qm.delivery_id(), "d-1");
  EXPECT_EQ(qm.handler_id(), "create_fn");
  EXPECT_EQ(qm.purpose(), "create");
  EXPECT_TRUE(qm.pending());
  EXPECT_EQ(qm.queued_events(), 3u);
  EXPECT_TRUE(qm.waiting_for_indices());
  EXPECT_FALSE(qm.has_wake_at());  // InfiniteFuture: none.
  q.wake_at = kT2;
  ToProto(q, &qm);
  EXPECT_EQ(qm.wake_at().seconds(), 1700000300);

  engine::TimerSnapshot t;
  t.resource = Kex();
  t.key = {"default", "kex-1"};
  t.handler_id = "tick";
  t.due = true;
  v1::ScheduledTimer tm;
  ToProto(t, &tm);
  EXPECT_EQ(tm.handler_id(), "tick");
  EXPECT_TRUE(tm.due());
  EXPECT_FALSE(tm.has_next_run());
  t.next_run = kT1;
  ToProto(t, &tm);
  EXPECT_EQ(tm.next_run().seconds(), 1700000000);

  engine::DaemonSnapshot d;
  d.resource = Kex();
  d.key = {"default", "kex-1"};
  d.handler_id = "watch";
  d.delivery = 9;
  d.stream = 1;
  d.state = "running";
  d.restarts = 2;
  v1::DaemonInfo dm;
  ToProto(d, &dm);
  EXPECT_EQ(dm.object().name(), "kex-1");
  EXPECT_EQ(dm.handler_id(), "watch");
  EXPECT_EQ(dm.delivery_id(), "d-9");
  EXPECT_EQ(dm.stream_id(), "stream-1");
  EXPECT_EQ(dm.state(), "running");
  EXPECT_EQ(dm.restarts(), 2u);
  EXPECT_FALSE(dm.has_started());
  EXPECT_FALSE(dm.has_restart_at());
  d.started = kT1;
  d.restart_at = kT2;
  ToProto(d, &dm);
  EXPECT_EQ(dm.started().seconds(), 1700000000);
  EXPECT_EQ(dm.restart_at().seconds(), 1700000300);
}

TEST(ConvertTest, AddMatchingCountsBeyondTheLimit) {
  std::vector<engine::TimerSnapshot> timers;
  for (const char* ns : {"a", "b", "a", "a"}) {
    engine::TimerSnapshot t;
    t.resource = Kex();
    t.key = {ns, "x"};
    t.handler_id = std::string("tick-") + ns;
    timers.push_back(t);
  }
  v1::ObjectFilter only_a;
  only_a.set_namespace_("a");
  google::protobuf::RepeatedPtrField<v1::ScheduledTimer> out;
  EXPECT_EQ(AddMatching(timers, only_a, 2, &out), 3u);
  ASSERT_EQ(out.size(), 2);
  EXPECT_EQ(out[0].object().namespace_(), "a");
  EXPECT_EQ(out[1].object().namespace_(), "a");
  out.Clear();
  EXPECT_EQ(AddMatching(timers, v1::ObjectFilter(), 0, &out), 4u);
  EXPECT_EQ(out.size(), 4);
}

TEST(ConvertTest, Progress) {
  engine::ProgressSnapshot s;
  s.handler_id = "create_fn";
  s.record.purpose = "create";
  s.record.started = kT1;
  s.record.delayed = kT2;
  s.record.retries = 1;
  s.record.message = "Not ready yet.";
  v1::HandlerProgress m;
  ToProto(s, &m);
  EXPECT_EQ(m.handler_id(), "create_fn");
  EXPECT_EQ(m.purpose(), v1::CAUSE_CREATE);
  EXPECT_EQ(m.started().seconds(), 1700000000);
  EXPECT_EQ(m.delayed().seconds(), 1700000300);
  EXPECT_FALSE(m.has_stopped());
  EXPECT_EQ(m.retries(), 1u);
  EXPECT_FALSE(m.success());
  EXPECT_FALSE(m.failure());
  EXPECT_EQ(m.message(), "Not ready yet.");
}

TEST(ConvertTest, Purposes) {
  EXPECT_EQ(PurposeCause("create"), v1::CAUSE_CREATE);
  EXPECT_EQ(PurposeCause("update"), v1::CAUSE_UPDATE);
  EXPECT_EQ(PurposeCause("delete"), v1::CAUSE_DELETE);
  EXPECT_EQ(PurposeCause("resume"), v1::CAUSE_RESUME);
  EXPECT_EQ(PurposeCause(""), v1::CAUSE_UNSPECIFIED);
  EXPECT_EQ(PurposeCause("timer"), v1::CAUSE_UNSPECIFIED);
}

TEST(ConvertTest, IndexEntries) {
  engine::IndexSnapshot::Entry e;
  e.key = nlohmann::json::array({"a", 1});
  e.values = {nlohmann::json({{"x", true}}), nlohmann::json(nullptr)};
  v1::IndexEntry m;
  ToProto(e, &m);
  ASSERT_EQ(m.key().list_value().values_size(), 2);
  EXPECT_EQ(m.key().list_value().values(0).string_value(), "a");
  EXPECT_EQ(m.key().list_value().values(1).number_value(), 1);
  ASSERT_EQ(m.values_size(), 2);
  EXPECT_TRUE(m.values(0).struct_value().fields().at("x").bool_value());
  EXPECT_EQ(m.values(1).kind_case(), google::protobuf::Value::kNullValue);
}

}  // namespace
}  // namespace herald::rpc
