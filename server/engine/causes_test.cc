#include "server/engine/causes.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/test_resources.h"

namespace herald::engine {
namespace {

using ::herald::engine::testing::Spec;
using nlohmann::json;
using ::testing::ElementsAreArray;

constexpr char kPrefix[] = "herald.dev";
constexpr char kFinalizer[] = "herald.dev/finalizer";

// A registry with one handler of every kind the tables use.
class Handlers {
 public:
  Handlers() {
    Add(Spec("create", Cause::kCreate));
    Add(Spec("update", Cause::kUpdate));
    Add(Spec("resume", Cause::kResume));
    Add(Spec("delete", Cause::kDelete));
    auto optional_delete = Spec("delete-optional", Cause::kDelete);
    optional_delete.optional = true;
    Add(optional_delete);
    auto field_a = Spec("field-a", Cause::kField);
    field_a.field = "spec.a";
    Add(field_a);
    auto field_b = Spec("field-b", Cause::kField);
    field_b.field = "spec.b";
    Add(field_b);
    auto labelled = Spec("create-labelled", Cause::kCreate);
    labelled.labels["app"].match = MetaMatch::kPresent;
    Add(labelled);
    auto idle = Spec("idle-timer", Cause::kTimer);
    idle.timer.interval = absl::Seconds(10);
    idle.timer.idle = absl::Seconds(5);
    Add(idle);
    Add(Spec("event", Cause::kEvent));
  }
  std::vector<const Handler*> Of(const std::vector<std::string>& ids) const {
    std::vector<const Handler*> out;
    for (const auto& id : ids) out.push_back(registry_.Find(id));
    return out;
  }

 private:
  void Add(const HandlerSpec& spec) {
    auto s = registry_.Add(spec, testing::Kex());
    EXPECT_TRUE(s.ok()) << s;
  }
  Registry registry_;
};

// An object with `spec`; `handled` stores the diff-base of `handled_spec`.
json Body(json spec) {
  return json{{"apiVersion", "kopf.dev/v1"},
              {"kind", "KopfExample"},
              {"metadata", {{"name", "x"}, {"namespace", "ns"}}},
              {"spec", std::move(spec)}};
}
json WithBase(json body, const json& handled_spec) {
  const std::string base = Essence(Body(handled_spec), kPrefix).dump() + "\n";
  body["metadata"]["annotations"]["herald.dev/last-handled-configuration"] =
      base;
  return body;
}
json WithFinalizer(json body) {
  body["metadata"]["finalizers"] = json::array({kFinalizer});
  return body;
}
json Deleted(json body) {
  body["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z";
  return body;
}

struct CauseCase {
  std::string name;
  json body;
  std::vector<std::string> registered;
  ObjectFacts facts;
  CausePlan::Action action;
  Cause cause;
  std::vector<std::string> joined;
};

std::string ActionName(CausePlan::Action a) {
  switch (a) {
    case CausePlan::Action::kNone:
      return "none";
    case CausePlan::Action::kAddFinalizer:
      return "add-finalizer";
    case CausePlan::Action::kRemoveFinalizer:
      return "remove-finalizer";
    case CausePlan::Action::kTrackEssence:
      return "track-essence";
    case CausePlan::Action::kCycle:
      return "cycle";
  }
  return "?";
}

ObjectFacts FirstSight() {
  ObjectFacts f;
  f.first_sight = true;
  return f;
}
ObjectFacts DeleteDone(bool daemons_hold) {
  ObjectFacts f;
  f.delete_done = true;
  f.daemons_hold = daemons_hold;
  return f;
}

TEST(CausesTest, DetectsKopfsCausesFromATable) {
  using A = CausePlan::Action;
  const json a1 = {{"a", 1}, {"b", 1}};
  const json a2 = {{"a", 2}, {"b", 1}};
  const std::vector<CauseCase> cases = {
      {"no handler matches (label filter): stealth",
       Body(a1),
       {"create-labelled"},
       {},
       A::kNone,
       Cause::kUnspecified,
       {}},
      {"raw-event handlers keep no state",
       Body(a1),
       {"event"},
       {},
       A::kNone,
       Cause::kUnspecified,
       {}},
      {"no diff-base: creation",
       Body(a1),
       {"create", "update", "resume"},
       {},
       A::kCycle,
       Cause::kCreate,
       {"create"}},
      {"creation on first sight: resume handlers stay out",
       Body(a1),
       {"create", "resume"},
       FirstSight(),
       A::kCycle,
       Cause::kCreate,
       {"create"}},
      {"malformed diff-base: creation",
       [] {
         json b = Body({{"a", 1}});
         b["metadata"]["annotations"]["herald.dev/last-handled-configuration"] =
             "{not json";
         return b;
       }(),
       {"create"},
       {},
       A::kCycle,
       Cause::kCreate,
       {"create"}},
      {"unchanged, seen before: nothing",
       WithBase(Body(a1), a1),
       {"create", "update", "resume"},
       {},
       A::kNone,
       Cause::kUnspecified,
       {}},
      {"unchanged, first sight: resume",
       WithBase(Body(a1), a1),
       {"create", "update", "resume"},
       FirstSight(),
       A::kCycle,
       Cause::kResume,
       {"resume"}},
      {"changed: update, field handlers only for their changed field",
       WithBase(Body(a2), a1),
       {"create", "update", "field-a", "field-b"},
       {},
       A::kCycle,
       Cause::kUpdate,
       {"update", "field-a"}},
      {"changed on first sight: update with resume handlers",
       WithBase(Body(a2), a1),
       {"update", "resume"},
       FirstSight(),
       A::kCycle,
       Cause::kUpdate,
       {"update", "resume"}},
      {"field handlers join creations",
       Body(a1),
       {"field-a"},
       {},
       A::kCycle,
       Cause::kCreate,
       {"field-a"}},
      {"a delete handler needs the finalizer",
       Body(a1),
       {"create", "delete"},
       {},
       A::kAddFinalizer,
       Cause::kUnspecified,
       {}},
      {"an optional delete handler does not",
       WithBase(Body(a1), a1),
       {"delete-optional"},
       {},
       A::kNone,
       Cause::kUnspecified,
       {}},
      {"a finalizer nobody needs goes",
       WithFinalizer(Body(a1)),
       {"create"},
       {},
       A::kRemoveFinalizer,
       Cause::kUnspecified,
       {}},
      {"a daemon that holds the object keeps the finalizer",
       WithFinalizer(WithBase(Body(a1), a1)),
       {"create"},
       [] {
         ObjectFacts f;
         f.daemons_hold = true;
         return f;
       }(),
       A::kNone,
       Cause::kUnspecified,
       {}},
      {"deletion with the finalizer: delete handlers",
       Deleted(WithFinalizer(WithBase(Body(a1), a1))),
       {"create", "delete"},
       {},
       A::kCycle,
       Cause::kDelete,
       {"delete"}},
      {"deletion without the finalizer: nothing holds it",
       Deleted(WithBase(Body(a1), a1)),
       {"delete-optional"},
       {},
       A::kNone,
       Cause::kUnspecified,
       {}},
      {"delete handlers done: the finalizer goes",
       Deleted(WithFinalizer(Body(a1))),
       {"delete"},
       DeleteDone(false),
       A::kRemoveFinalizer,
       Cause::kUnspecified,
       {}},
      {"delete handlers done, a daemon not released: wait",
       Deleted(WithFinalizer(Body(a1))),
       {"delete"},
       DeleteDone(true),
       A::kNone,
       Cause::kUnspecified,
       {}},
      {"idle timers alone track the essence",
       WithFinalizer(Body(a1)),
       {"idle-timer"},
       {},
       A::kTrackEssence,
       Cause::kUnspecified,
       {}},
      {"timers need the finalizer",
       Body(a1),
       {"idle-timer"},
       {},
       A::kAddFinalizer,
       Cause::kUnspecified,
       {}},
  };
  Handlers handlers;
  AnnotationKeys keys(kPrefix, /*v1=*/false);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const CausePlan plan = DetectCause(c.body, handlers.Of(c.registered),
                                       c.facts, keys, kFinalizer);
    EXPECT_EQ(ActionName(plan.action), ActionName(c.action));
    EXPECT_EQ(CauseName(plan.cause), CauseName(c.cause));
    std::vector<std::string> joined;
    for (const Handler* h : plan.handlers) joined.push_back(h->id());
    EXPECT_THAT(joined, ElementsAreArray(c.joined));
  }
}

TEST(CausesTest, AnUpdateCarriesBothEssencesAndTheirDiff) {
  Handlers handlers;
  AnnotationKeys keys(kPrefix, false);
  const CausePlan plan =
      DetectCause(WithBase(Body({{"a", 2}}), {{"a", 1}}),
                  handlers.Of({"update"}), {}, keys, kFinalizer);
  ASSERT_EQ(plan.cause, Cause::kUpdate);
  EXPECT_EQ(plan.purpose, "update");
  EXPECT_EQ(plan.old_essence["spec"]["a"], 1);
  EXPECT_EQ(plan.new_essence["spec"]["a"], 2);
  EXPECT_EQ(DiffToJson(plan.diff).dump(), R"([["change",["spec","a"],1,2]])");
  EXPECT_TRUE(plan.essence_touched);
}

TEST(CausesTest, LargeEssencesAreComparedByDigest) {
  Handlers handlers;
  AnnotationKeys keys(kPrefix, false);
  const json old_spec = {{"a", 1}};
  const json old_essence = Essence(Body(old_spec), kPrefix);
  auto with_digest = [&](json body) {
    body["metadata"]["annotations"]["herald.dev/last-handled-digest"] =
        Digest(old_essence.dump() + "\n");
    return body;
  };
  // The same essence: nothing changed.
  CausePlan same = DetectCause(with_digest(Body(old_spec)),
                               handlers.Of({"update"}), {}, keys, kFinalizer);
  EXPECT_EQ(same.action, CausePlan::Action::kNone);
  // Changed, the old essence kept in memory: an update from it.
  ObjectFacts facts;
  facts.large_base = &old_essence;
  CausePlan known =
      DetectCause(with_digest(Body({{"a", 2}})), handlers.Of({"update"}), facts,
                  keys, kFinalizer);
  EXPECT_EQ(known.cause, Cause::kUpdate);
  EXPECT_EQ(known.old_essence, old_essence);
  // Changed, the old essence unknown (another sidecar handled it): an
  // update from nothing.
  CausePlan unknown =
      DetectCause(with_digest(Body({{"a", 2}})), handlers.Of({"update"}), {},
                  keys, kFinalizer);
  EXPECT_EQ(unknown.cause, Cause::kUpdate);
  EXPECT_TRUE(unknown.old_essence.is_null());
}

TEST(CausesTest, PurposesAreKopfs) {
  EXPECT_EQ(PurposeOf(Cause::kCreate), "create");
  EXPECT_EQ(PurposeOf(Cause::kResume), "resume");
  EXPECT_EQ(PurposeOf(Cause::kTimer), "");
}

TEST(CausesTest, ProgressPlansWhoIsDueFromTheAnnotations) {
  Handlers handlers;
  AnnotationKeys keys(kPrefix, false);
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  json body = Body({{"a", 1}});
  auto& ann = body["metadata"]["annotations"];
  ProgressRecord done;
  done.success = true;
  done.purpose = "create";
  ProgressRecord later;
  later.delayed = now + absl::Seconds(30);
  later.retries = 2;
  later.subrefs = {"update/child"};
  ProgressRecord child;
  child.success = true;
  ann["herald.dev/create"] = EncodeProgress(done);
  ann["herald.dev/update"] = EncodeProgress(later);
  ann["herald.dev/update.child"] = EncodeProgress(child);
  const ProgressPlan plan = PlanProgress(
      body, handlers.Of({"create", "update", "resume"}), "update", keys, now);
  ASSERT_EQ(plan.due.size(), 1u);
  EXPECT_EQ(plan.due[0]->id(), "resume");
  EXPECT_EQ(plan.wake, now + absl::Seconds(30));
  EXPECT_TRUE(plan.records.at("create").success);
  EXPECT_EQ(plan.records.at("update").retries, 2);
  EXPECT_EQ(plan.records.at("resume").purpose, "update");
  EXPECT_TRUE(plan.child_records.at("update/child").success);
  // Once the delay has passed, the handler is due again.
  const ProgressPlan after = PlanProgress(
      body, handlers.Of({"update"}), "update", keys, now + absl::Minutes(1));
  ASSERT_EQ(after.due.size(), 1u);
  EXPECT_EQ(after.wake, absl::InfiniteFuture());
}

}  // namespace
}  // namespace herald::engine
