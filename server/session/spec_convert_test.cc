#include "server/session/spec_convert.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace herald::session {
namespace {

using ::testing::HasSubstr;

// A herald.v1 enum numbered 0..n-1 with as many values as the engine's; the
// checks below pin each value.
void ExpectSameNumbers(const google::protobuf::EnumDescriptor* wire,
                       int engine_count) {
  SCOPED_TRACE(wire->full_name());
  EXPECT_EQ(wire->value_count(), engine_count);
  for (int i = 0; i < wire->value_count(); ++i) {
    EXPECT_EQ(wire->value(i)->number(), i) << wire->value(i)->name();
  }
}

TEST(EnumsTest, CausesAreNumberedAsTheWire) {
  ExpectSameNumbers(v1::Cause_descriptor(), engine::kCauseCount);
  EXPECT_EQ(static_cast<int>(engine::Cause::kCreate), v1::CAUSE_CREATE);
  EXPECT_EQ(static_cast<int>(engine::Cause::kUpdate), v1::CAUSE_UPDATE);
  EXPECT_EQ(static_cast<int>(engine::Cause::kDelete), v1::CAUSE_DELETE);
  EXPECT_EQ(static_cast<int>(engine::Cause::kResume), v1::CAUSE_RESUME);
  EXPECT_EQ(static_cast<int>(engine::Cause::kField), v1::CAUSE_FIELD);
  EXPECT_EQ(static_cast<int>(engine::Cause::kEvent), v1::CAUSE_EVENT);
  EXPECT_EQ(static_cast<int>(engine::Cause::kTimer), v1::CAUSE_TIMER);
  EXPECT_EQ(static_cast<int>(engine::Cause::kDaemon), v1::CAUSE_DAEMON);
  EXPECT_EQ(static_cast<int>(engine::Cause::kIndex), v1::CAUSE_INDEX);
  EXPECT_EQ(static_cast<int>(engine::Cause::kStartup), v1::CAUSE_STARTUP);
  EXPECT_EQ(static_cast<int>(engine::Cause::kCleanup), v1::CAUSE_CLEANUP);
  EXPECT_EQ(static_cast<int>(engine::Cause::kProbe), v1::CAUSE_PROBE);
}

TEST(EnumsTest, CauseNameIsTheWireNameLowercasedWithoutItsPrefix) {
  const auto* wire = v1::Cause_descriptor();
  for (int i = 0; i < wire->value_count(); ++i) {
    const std::string expected = absl::AsciiStrToLower(
        absl::StripPrefix(wire->value(i)->name(), "CAUSE_"));
    EXPECT_EQ(
        engine::CauseName(static_cast<engine::Cause>(wire->value(i)->number())),
        expected);
  }
}

TEST(EnumsTest, FiltersAndErrorsModesAreNumberedAsTheWire) {
  ExpectSameNumbers(v1::ErrorsMode_descriptor(), 4);
  EXPECT_EQ(static_cast<int>(engine::ErrorsMode::kTemporary),
            v1::ERRORS_MODE_TEMPORARY);
  EXPECT_EQ(static_cast<int>(engine::ErrorsMode::kPermanent),
            v1::ERRORS_MODE_PERMANENT);
  EXPECT_EQ(static_cast<int>(engine::ErrorsMode::kIgnored),
            v1::ERRORS_MODE_IGNORED);
  ExpectSameNumbers(v1::MetaMatch_descriptor(), 4);
  EXPECT_EQ(static_cast<int>(engine::MetaMatch::kEquals),
            v1::META_MATCH_EQUALS);
  EXPECT_EQ(static_cast<int>(engine::MetaMatch::kPresent),
            v1::META_MATCH_PRESENT);
  EXPECT_EQ(static_cast<int>(engine::MetaMatch::kAbsent),
            v1::META_MATCH_ABSENT);
  ExpectSameNumbers(v1::ValueMatch_descriptor(), 4);
  EXPECT_EQ(static_cast<int>(engine::ValueMatch::kEquals),
            v1::VALUE_MATCH_EQUALS);
  EXPECT_EQ(static_cast<int>(engine::ValueMatch::kPresent),
            v1::VALUE_MATCH_PRESENT);
  EXPECT_EQ(static_cast<int>(engine::ValueMatch::kAbsent),
            v1::VALUE_MATCH_ABSENT);
}

v1::HandlerSpec Wire(const std::string& id, v1::Cause cause) {
  v1::HandlerSpec s;
  s.set_id(id);
  s.set_resource("kopfexamples");
  s.set_cause(cause);
  return s;
}

google::protobuf::Duration Seconds(int64_t seconds, int32_t nanos = 0) {
  google::protobuf::Duration d;
  d.set_seconds(seconds);
  d.set_nanos(nanos);
  return d;
}

// Wire specs that set each field in turn, and what the engine sees.
struct RoundTrip {
  const char* name;
  v1::HandlerSpec wire;
  engine::HandlerSpec expected;
};

std::vector<RoundTrip> RoundTrips() {
  std::vector<RoundTrip> out;
  auto add = [&](const char* name, v1::Cause cause, auto set_wire,
                 auto set_engine) {
    RoundTrip t{name, Wire("h", cause), {}};
    t.expected.id = "h";
    t.expected.resource = "kopfexamples";
    t.expected.cause = static_cast<engine::Cause>(cause);
    set_wire(t.wire);
    set_engine(t.expected);
    out.push_back(std::move(t));
  };
  add(
      "plain", v1::CAUSE_CREATE, [](v1::HandlerSpec&) {},
      [](engine::HandlerSpec&) {});
  add(
      "activity", v1::CAUSE_STARTUP,
      [](v1::HandlerSpec& w) { w.clear_resource(); },
      [](engine::HandlerSpec& e) { e.resource.clear(); });
  add(
      "labels", v1::CAUSE_UPDATE,
      [](v1::HandlerSpec& w) {
        (*w.mutable_labels())["app"].set_match(v1::META_MATCH_EQUALS);
        (*w.mutable_labels())["app"].set_value("web");
        (*w.mutable_labels())["tier"].set_match(v1::META_MATCH_ABSENT);
      },
      [](engine::HandlerSpec& e) {
        e.labels["app"] = {engine::MetaMatch::kEquals, "web"};
        e.labels["tier"] = {engine::MetaMatch::kAbsent, ""};
      });
  add(
      "annotations", v1::CAUSE_UPDATE,
      [](v1::HandlerSpec& w) {
        (*w.mutable_annotations())["a"].set_match(v1::META_MATCH_PRESENT);
      },
      [](engine::HandlerSpec& e) {
        e.annotations["a"] = {engine::MetaMatch::kPresent, ""};
      });
  add(
      "field and value filters", v1::CAUSE_FIELD,
      [](v1::HandlerSpec& w) {
        w.set_field("spec.size");
        w.mutable_value_filter()->set_match(v1::VALUE_MATCH_PRESENT);
        w.mutable_old_filter()->set_match(v1::VALUE_MATCH_EQUALS);
        w.mutable_old_filter()->set_value_json("1");
        w.mutable_new_filter()->set_match(v1::VALUE_MATCH_ABSENT);
      },
      [](engine::HandlerSpec& e) {
        e.field = "spec.size";
        e.value_filter = {engine::ValueMatch::kPresent, ""};
        e.old_filter = {engine::ValueMatch::kEquals, "1"};
        e.new_filter = {engine::ValueMatch::kAbsent, ""};
      });
  add(
      "retries zero is set", v1::CAUSE_CREATE,
      [](v1::HandlerSpec& w) { w.set_retries(0); },
      [](engine::HandlerSpec& e) { e.retries = 0u; });
  add(
      "retries", v1::CAUSE_CREATE, [](v1::HandlerSpec& w) { w.set_retries(3); },
      [](engine::HandlerSpec& e) { e.retries = 3u; });
  add(
      "timeout and backoff", v1::CAUSE_CREATE,
      [](v1::HandlerSpec& w) {
        *w.mutable_timeout() = Seconds(30, 500000000);
        *w.mutable_backoff() = Seconds(0);
      },
      [](engine::HandlerSpec& e) {
        e.timeout = absl::Milliseconds(30500);
        e.backoff = absl::ZeroDuration();
      });
  add(
      "errors, optional, has_when, indices", v1::CAUSE_DELETE,
      [](v1::HandlerSpec& w) {
        w.set_errors(v1::ERRORS_MODE_IGNORED);
        w.set_optional(true);
        w.set_has_when(true);
        w.add_indices("by_owner");
        w.add_indices("by_node");
      },
      [](engine::HandlerSpec& e) {
        e.errors = engine::ErrorsMode::kIgnored;
        e.optional = true;
        e.has_when = true;
        e.indices = {"by_owner", "by_node"};
      });
  add(
      "timer", v1::CAUSE_TIMER,
      [](v1::HandlerSpec& w) {
        *w.mutable_timer()->mutable_interval() = Seconds(5);
        *w.mutable_timer()->mutable_initial_delay() = Seconds(1, 250000000);
        *w.mutable_timer()->mutable_idle() = Seconds(0);
        w.mutable_timer()->set_sharp(true);
      },
      [](engine::HandlerSpec& e) {
        e.timer.interval = absl::Seconds(5);
        e.timer.initial_delay = absl::Milliseconds(1250);
        e.timer.idle = absl::ZeroDuration();
        e.timer.sharp = true;
      });
  add(
      "daemon", v1::CAUSE_DAEMON,
      [](v1::HandlerSpec& w) {
        *w.mutable_daemon()->mutable_initial_delay() = Seconds(2);
        *w.mutable_daemon()->mutable_cancellation_backoff() = Seconds(0, 1);
        *w.mutable_daemon()->mutable_cancellation_timeout() = Seconds(7);
      },
      [](engine::HandlerSpec& e) {
        e.daemon.initial_delay = absl::Seconds(2);
        e.daemon.cancellation_backoff = absl::Nanoseconds(1);
        e.daemon.cancellation_timeout = absl::Seconds(7);
      });
  add(
      "index by label", v1::CAUSE_INDEX,
      [](v1::HandlerSpec& w) { w.mutable_index()->set_label("app"); },
      [](engine::HandlerSpec& e) {
        e.index = engine::IndexOptions{"app", ""};
      });
  add(
      "index by field", v1::CAUSE_INDEX,
      [](v1::HandlerSpec& w) { w.mutable_index()->set_field("spec.node"); },
      [](engine::HandlerSpec& e) {
        e.index = engine::IndexOptions{"", "spec.node"};
      });
  add(
      "index with neither", v1::CAUSE_INDEX,
      [](v1::HandlerSpec& w) { w.mutable_index(); },
      [](engine::HandlerSpec& e) { e.index = engine::IndexOptions{}; });
  return out;
}

TEST(SpecConvertTest, EveryFieldRoundTrips) {
  for (const RoundTrip& t : RoundTrips()) {
    SCOPED_TRACE(t.name);
    absl::StatusOr<engine::HandlerSpec> got = SpecFromWire(t.wire);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(*got == t.expected);
    const v1::HandlerSpec back = SpecToWire(*got);
    EXPECT_TRUE(
        google::protobuf::util::MessageDifferencer::Equals(back, t.wire))
        << "sent:\n"
        << t.wire.DebugString() << "back:\n"
        << back.DebugString();
    absl::StatusOr<engine::HandlerSpec> again = SpecFromWire(back);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(*again == t.expected);
  }
}

TEST(SpecConvertTest, EqualitySeesEveryField) {
  // Every case differs from the plain one; each pair of distinct cases
  // differs too.
  const std::vector<RoundTrip> all = RoundTrips();
  for (size_t i = 0; i < all.size(); ++i) {
    for (size_t j = 0; j < all.size(); ++j) {
      EXPECT_EQ(all[i].expected == all[j].expected, i == j)
          << all[i].name << " vs " << all[j].name;
    }
  }
  engine::HandlerSpec a = all[0].expected;
  engine::HandlerSpec b = a;
  b.timer.idle = absl::Seconds(1);
  EXPECT_FALSE(a == b);
  b = a;
  b.daemon.cancellation_timeout = absl::Seconds(1);
  EXPECT_FALSE(a == b);
  b = a;
  b.retries = 0u;
  EXPECT_FALSE(a == b);
  b = a;
  b.index = engine::IndexOptions{};
  EXPECT_FALSE(a == b);
}

TEST(SpecConvertTest, ZeroDurationsWithoutPresenceAreCanonical) {
  v1::HandlerSpec w = Wire("h", v1::CAUSE_TIMER);
  *w.mutable_timer()->mutable_interval() = Seconds(5);
  *w.mutable_timer()->mutable_initial_delay() = Seconds(0);
  absl::StatusOr<engine::HandlerSpec> got = SpecFromWire(w);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->timer.initial_delay, absl::ZeroDuration());
  EXPECT_FALSE(SpecToWire(*got).timer().has_initial_delay());
}

TEST(SpecConvertTest, BadDurationsNameTheirField) {
  struct Case {
    const char* field;
    void (*set)(v1::HandlerSpec&, const google::protobuf::Duration&);
  };
  const Case cases[] = {
      {"timeout",
       [](v1::HandlerSpec& w, const google::protobuf::Duration& d) {
         *w.mutable_timeout() = d;
       }},
      {"backoff",
       [](v1::HandlerSpec& w, const google::protobuf::Duration& d) {
         *w.mutable_backoff() = d;
       }},
      {"timer.interval",
       [](v1::HandlerSpec& w, const google::protobuf::Duration& d) {
         *w.mutable_timer()->mutable_interval() = d;
       }},
      {"timer.initial_delay",
       [](v1::HandlerSpec& w, const google::protobuf::Duration& d) {
         *w.mutable_timer()->mutable_initial_delay() = d;
       }},
      {"timer.idle",
       [](v1::HandlerSpec& w, const google::protobuf::Duration& d) {
         *w.mutable_timer()->mutable_idle() = d;
       }},
      {"daemon.initial_delay",
       [](v1::HandlerSpec& w, const google::protobuf::Duration& d) {
         *w.mutable_daemon()->mutable_initial_delay() = d;
       }},
      {"daemon.cancellation_backoff",
       [](v1::HandlerSpec& w, const google::protobuf::Duration& d) {
         *w.mutable_daemon()->mutable_cancellation_backoff() = d;
       }},
      {"daemon.cancellation_timeout",
       [](v1::HandlerSpec& w, const google::protobuf::Duration& d) {
         *w.mutable_daemon()->mutable_cancellation_timeout() = d;
       }},
  };
  struct Bad {
    google::protobuf::Duration d;
    const char* why;
  };
  const Bad bads[] = {
      {Seconds(1, 1000000000), "not a valid duration"},
      {Seconds(1, -1), "not a valid duration"},
      {Seconds(-1, 1), "not a valid duration"},
      {Seconds(315576000001), "not a valid duration"},
      {Seconds(-5), "must not be negative"},
      {Seconds(0, -1), "must not be negative"},
  };
  for (const Case& c : cases) {
    for (const Bad& b : bads) {
      SCOPED_TRACE(absl::StrCat(c.field, " ", b.d.ShortDebugString()));
      v1::HandlerSpec w = Wire("h", v1::CAUSE_TIMER);
      c.set(w, b.d);
      absl::StatusOr<engine::HandlerSpec> got = SpecFromWire(w);
      ASSERT_FALSE(got.ok());
      EXPECT_TRUE(absl::IsInvalidArgument(got.status()));
      EXPECT_TRUE(
          absl::StartsWith(got.status().message(), absl::StrCat(c.field, ": ")))
          << got.status();
      EXPECT_THAT(std::string(got.status().message()), HasSubstr(b.why));
    }
  }
}

}  // namespace
}  // namespace herald::session
