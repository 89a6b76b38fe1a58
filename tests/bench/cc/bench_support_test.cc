#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/bench/cc/handler_config.h"
#include "tests/bench/cc/handler_stats.h"
#include "tests/bench/cc/samples.h"
#include "tests/bench/cc/sent_ns.h"

namespace herald::bench {
namespace {

TEST(FindSentNs, FindsTheQuotedAnnotation) {
  EXPECT_EQ(FindSentNs(R"({"metadata":{"name":"a","annotations":)"
                       R"({"x":"1","bench.herald.dev/sent-ns":)"
                       R"("1764000000123456789"}}})"),
            1764000000123456789);
}

TEST(FindSentNs, AllowsSpacesAndBareNumbers) {
  EXPECT_EQ(FindSentNs(R"({"bench.herald.dev/sent-ns" :  "42" })"), 42);
  EXPECT_EQ(FindSentNs(R"({"bench.herald.dev/sent-ns":42})"), 42);
}

TEST(FindSentNs, AbsentOrMalformed) {
  EXPECT_EQ(FindSentNs(""), absl::nullopt);
  EXPECT_EQ(FindSentNs(R"({"metadata":{"name":"a"}})"), absl::nullopt);
  EXPECT_EQ(FindSentNs(R"({"bench.herald.dev/sent-ns":""})"), absl::nullopt);
  EXPECT_EQ(FindSentNs(R"({"bench.herald.dev/sent-ns":"12x"})"), absl::nullopt);
  EXPECT_EQ(
      FindSentNs(R"({"bench.herald.dev/sent-ns":"99999999999999999999"})"),
      absl::nullopt);
  EXPECT_EQ(FindSentNs(R"({"bench.herald.dev/sent-ns")"), absl::nullopt);
}

TEST(FindSentNs, SkipsEscapedCopiesAndValues) {
  // An escaped copy (last-applied-configuration) comes first; the real
  // annotation follows. A value equal to the key is skipped too.
  const std::string body =
      R"({"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-)"
      R"(configuration":"{\"bench.herald.dev/sent-ns\":\"1\"}",)"
      R"("note":"bench.herald.dev/sent-ns",)"
      R"("bench.herald.dev/sent-ns":"7"}}})";
  EXPECT_EQ(FindSentNs(body), 7);
}

TEST(AppendMicrosArray, ExactToTheNanosecond) {
  std::string out;
  AppendMicrosArray({0, 1000, 12500, 130042, 1, -3000, -1500}, &out);
  EXPECT_EQ(out, "[0,1,12.5,130.042,0.001,-3,-1.5]");
  out.clear();
  AppendMicrosArray({}, &out);
  EXPECT_EQ(out, "[]");
}

TEST(AppendJsonString, Escapes) {
  std::string out;
  AppendJsonString("a\"b\\c\nd\x01", &out);
  EXPECT_EQ(out, R"("a\"b\\c\nd\u0001")");
}

TEST(Samples, KeepsTheFirstUpToTheCap) {
  Samples s(2);
  s.Add(1);
  s.Add(2);
  s.Add(3);
  EXPECT_EQ(s.ns(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(s.dropped(), 1u);
}

TEST(HandlerStats, PairsOutcomesWithAcks) {
  HandlerStats stats;
  // Delivery 1 carries sent-ns; delivery 2 does not.
  auto e1 = stats.OnDelivery(/*realtime_ns=*/10'000, 4'000);
  ASSERT_EQ(e1, 6'000);
  stats.OnOutcomeSent("d-1", /*monotonic_ns=*/100'000, e1);
  auto e2 = stats.OnDelivery(12'000, absl::nullopt);
  EXPECT_EQ(e2, absl::nullopt);
  stats.OnOutcomeSent("d-2", 101'000, e2);
  EXPECT_EQ(stats.in_flight(), 2u);
  stats.OnAck("d-2", 103'500, 20'000);
  stats.OnAck("d-1", 109'000, 21'000);
  stats.OnAck("d-9", 110'000, 22'000);  // Not answered here.
  EXPECT_EQ(stats.in_flight(), 0u);

  auto j = nlohmann::json::parse(stats.ToJson());
  EXPECT_EQ(j["deliveries"], 2);
  EXPECT_EQ(j["acks"], 3);
  EXPECT_EQ(j["without_sent_ns"], 1);
  EXPECT_EQ(j["first_ns"], 10'000);
  EXPECT_EQ(j["last_ns"], 22'000);
  EXPECT_EQ(j["event_to_handler_us"], nlohmann::json::parse("[6]"));
  EXPECT_EQ(j["outcome_to_ack_us"], nlohmann::json::parse("[2.5,9]"));
  EXPECT_EQ(j["round_trip_us"], nlohmann::json::parse("[15]"));
}

TEST(HandlerStats, ProtocolErrorForgetsTheDelivery) {
  HandlerStats stats;
  stats.OnDelivery(1, absl::nullopt);
  stats.OnOutcomeSent("d-1", 1, absl::nullopt);
  stats.OnProtocolError("d-1");
  stats.OnProtocolError("");
  EXPECT_EQ(stats.in_flight(), 0u);
  EXPECT_EQ(stats.protocol_errors(), 2u);
  auto j = nlohmann::json::parse(stats.ToJson());
  EXPECT_EQ(j["protocol_errors"], 2);
  EXPECT_EQ(j["last_ns"], 1);  // No ack: the last delivery.
}

TEST(ParseLabels, RepeatedAndCommaLists) {
  auto labels = ParseLabels({"shard=3", "app=web,tier=front", "x="});
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ(*labels,
            (std::map<std::string, std::string>{
                {"shard", "3"}, {"app", "web"}, {"tier", "front"}, {"x", ""}}));
  EXPECT_FALSE(ParseLabels({"novalue"}).ok());
  EXPECT_FALSE(ParseLabels({"=v"}).ok());
}

TEST(ParseCause, Names) {
  EXPECT_EQ(*ParseCause("event"), v1::CAUSE_EVENT);
  EXPECT_EQ(*ParseCause("create"), v1::CAUSE_CREATE);
  EXPECT_EQ(*ParseCause("update"), v1::CAUSE_UPDATE);
  EXPECT_EQ(*ParseCause("resume"), v1::CAUSE_RESUME);
  EXPECT_FALSE(ParseCause("delete").ok());
}

TEST(TakeRepeatedFlag, CollectsAllFormsAndLeavesTheRest) {
  std::vector<std::string> args = {"prog",       "--label=a=1", "--credits=8",
                                   "--label",    "b=2",         "-label=c=3",
                                   "--labels=x", "--",          "--label=d=4"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int argc = static_cast<int>(args.size());
  auto values = TakeRepeatedFlag("label", &argc, argv.data());
  EXPECT_EQ(values, (std::vector<std::string>{"a=1", "b=2", "c=3"}));
  ASSERT_EQ(argc, 5);
  EXPECT_STREQ(argv[1], "--credits=8");
  EXPECT_STREQ(argv[2], "--labels=x");
  EXPECT_STREQ(argv[3], "--");
  EXPECT_STREQ(argv[4], "--label=d=4");
  EXPECT_EQ(argv[5], nullptr);
}

TEST(BuildRegister, OneHandlerWithEqualsFilters) {
  HandlerConfig c;
  c.process_name = "p";
  c.resource = "widgets";
  c.handler_id = "bench";
  c.cause = v1::CAUSE_UPDATE;
  c.labels = {{"shard", "3"}};
  c.credits = 256;
  v1::ConnectRequest req = BuildRegister(c);
  ASSERT_TRUE(req.has_register_());
  const v1::Register& r = req.register_();
  EXPECT_EQ(r.process_name(), "p");
  EXPECT_EQ(r.credits(), 256u);
  ASSERT_EQ(r.handlers_size(), 1);
  const v1::HandlerSpec& h = r.handlers(0);
  EXPECT_EQ(h.id(), "bench");
  EXPECT_EQ(h.resource(), "widgets");
  EXPECT_EQ(h.cause(), v1::CAUSE_UPDATE);
  ASSERT_EQ(h.labels().count("shard"), 1u);
  EXPECT_EQ(h.labels().at("shard").match(), v1::META_MATCH_EQUALS);
  EXPECT_EQ(h.labels().at("shard").value(), "3");
}

}  // namespace
}  // namespace herald::bench
