#include "server/engine/registry.h"

#include <functional>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/test_resources.h"

namespace herald::engine {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

using ::herald::engine::testing::Kex;
using ::herald::engine::testing::Spec;

TEST(RegistryTest, ValidatesSpecs) {
  EXPECT_TRUE(ValidateSpec(Spec("a", Cause::kCreate)).ok());
  EXPECT_THAT(ValidateSpec(Spec("", Cause::kCreate)).message(),
              HasSubstr("id"));
  EXPECT_THAT(ValidateSpec(Spec("a", Cause::kUnspecified)).message(),
              HasSubstr("cause is unspecified"));
  EXPECT_THAT(ValidateSpec(Spec("a", Cause::kField)).message(),
              HasSubstr("needs a field"));
  EXPECT_THAT(ValidateSpec(Spec("t", Cause::kTimer)).message(),
              HasSubstr("positive interval"));
  auto timer = Spec("t", Cause::kTimer);
  timer.timer.interval = absl::Seconds(5);
  EXPECT_TRUE(ValidateSpec(timer).ok());
  EXPECT_TRUE(ValidateSpec(Spec("i", Cause::kIndex)).ok());
  EXPECT_TRUE(ValidateSpec(Spec("d", Cause::kDaemon)).ok());
  auto by_label = Spec("i", Cause::kIndex);
  by_label.index = IndexOptions{"app", ""};
  EXPECT_TRUE(ValidateSpec(by_label).ok());
  auto by_nothing = Spec("i", Cause::kIndex);
  by_nothing.index = IndexOptions{};
  EXPECT_THAT(ValidateSpec(by_nothing).message(),
              HasSubstr("needs a label or a field"));
  auto misplaced = Spec("c", Cause::kCreate);
  misplaced.index = IndexOptions{"app", ""};
  EXPECT_THAT(ValidateSpec(misplaced).message(),
              HasSubstr("index options are for index handlers"));
  // Activities have no resource; everything else needs one.
  auto startup = Spec("s", Cause::kStartup);
  EXPECT_THAT(ValidateSpec(startup).message(), HasSubstr("has no resource"));
  startup.resource.clear();
  EXPECT_TRUE(ValidateSpec(startup).ok());
  auto probe = Spec("p", Cause::kProbe);
  probe.resource.clear();
  EXPECT_TRUE(ValidateSpec(probe).ok());
  auto create = Spec("c", Cause::kCreate);
  create.resource.clear();
  EXPECT_THAT(ValidateSpec(create).message(), HasSubstr("resource is empty"));
  auto s = Spec("a", Cause::kCreate);
  s.labels["x"];  // match left unspecified
  EXPECT_THAT(ValidateSpec(s).message(), HasSubstr("label filter 'x'"));
  auto v = Spec("a", Cause::kField);
  v.field = "spec.x";
  v.value_filter.match = ValueMatch::kEquals;
  v.value_filter.value_json = "{nope";
  EXPECT_THAT(ValidateSpec(v).message(), HasSubstr("value_json is not JSON"));
}

TEST(RegistryTest, LabelAndAnnotationKeysFollowKubernetesRules) {
  auto labels = [](const std::string& key, MetaMatch match,
                   const std::string& value = "") {
    auto s = Spec("a", Cause::kCreate);
    s.labels[key].match = match;
    s.labels[key].value = value;
    return ValidateSpec(s);
  };
  auto annotations = [](const std::string& key) {
    auto s = Spec("a", Cause::kCreate);
    s.annotations[key].match = MetaMatch::kPresent;
    return ValidateSpec(s);
  };
  EXPECT_TRUE(labels("app", MetaMatch::kPresent).ok());
  EXPECT_TRUE(labels("app.kubernetes.io/name", MetaMatch::kEquals, "web").ok());
  EXPECT_TRUE(labels("x", MetaMatch::kEquals, "").ok());
  absl::Status st = labels("not a/valid//key!!", MetaMatch::kPresent);
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(),
              HasSubstr("label filter 'not a/valid//key!!': not a valid "
                        "label key: more than one '/'"));
  EXPECT_THAT(labels("-app", MetaMatch::kAbsent).message(),
              HasSubstr("the name '-app' must consist of letters, digits"));
  EXPECT_THAT(labels("Example.com/app", MetaMatch::kPresent).message(),
              HasSubstr("the prefix 'Example.com' is not a DNS subdomain"));
  EXPECT_THAT(labels(std::string(64, 'k'), MetaMatch::kPresent).message(),
              HasSubstr("64 characters long, more than 63"));
  EXPECT_THAT(labels("app", MetaMatch::kEquals, "a b").message(),
              HasSubstr("label filter 'app': value 'a b' is not a valid "
                        "label value"));

  EXPECT_TRUE(annotations("kopf.zalando.org/last-handled-configuration").ok());
  // Annotation keys are checked lowercased, as the API server does.
  EXPECT_TRUE(annotations("Example.com/Note").ok());
  EXPECT_THAT(annotations("not a/valid//key!!").message(),
              HasSubstr("annotation filter 'not a/valid//key!!': not a valid "
                        "annotation key: more than one '/'"));
  EXPECT_THAT(annotations("example.com/").message(),
              HasSubstr("the name after '/' is empty"));

  auto index = Spec("i", Cause::kIndex);
  index.index = IndexOptions{"app/", ""};
  EXPECT_THAT(ValidateSpec(index).message(),
              HasSubstr("index label 'app/': not a valid label key"));
}

TEST(RegistryTest, FieldPathsAreDotSeparatedNonEmptyKeys) {
  auto field = [](const std::string& path) {
    auto s = Spec("f", Cause::kField);
    s.field = path;
    return ValidateSpec(s);
  };
  EXPECT_TRUE(field("spec").ok());
  EXPECT_TRUE(field("spec.size").ok());
  EXPECT_TRUE(field("metadata.labels.app-name_1").ok());
  absl::Status st = field("spec..[x]");
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(), HasSubstr("field 'spec..[x]': segment 2 is empty"));
  EXPECT_THAT(field(".spec").message(), HasSubstr("segment 1 is empty"));
  EXPECT_THAT(field("spec.").message(), HasSubstr("segment 2 is empty"));
  EXPECT_THAT(field("spec.items[0].name").message(),
              HasSubstr("segment 2 'items[0]' has brackets: list indexes are "
                        "not supported"));
  auto update = Spec("u", Cause::kUpdate);
  update.field = "spec..x";
  EXPECT_THAT(ValidateSpec(update).message(), HasSubstr("segment 2 is empty"));
  auto index = Spec("i", Cause::kIndex);
  index.index = IndexOptions{"", "spec.nodeName."};
  EXPECT_THAT(ValidateSpec(index).message(),
              HasSubstr("index field 'spec.nodeName.': segment 3 is empty"));
}

TEST(RegistryTest, AddRejectsWhatValidateSpecRejects) {
  Registry registry;
  auto s = Spec("a", Cause::kCreate);
  s.labels["bad key"].match = MetaMatch::kPresent;
  EXPECT_THAT(registry.Add(s, Kex()).message(),
              HasSubstr("not a valid label key"));
  EXPECT_EQ(registry.Find("a"), nullptr);
}

TEST(RegistryTest, SameIdSameSpecIsFineDifferentSpecIsRejected) {
  Registry r;
  ASSERT_TRUE(r.Add(Spec("a", Cause::kCreate), Kex()).ok());
  EXPECT_TRUE(r.Add(Spec("a", Cause::kCreate), Kex()).ok());
  auto st = r.Add(Spec("a", Cause::kUpdate), Kex());
  EXPECT_THAT(st.message(),
              HasSubstr("already registered with a different spec"));
  EXPECT_EQ(r.ForResource("kopfexamples.v1.kopf.dev").size(), 1u);
}

// Every field takes part in the comparison, durations and their presence
// included, for registered and for pending handlers alike.
TEST(RegistryTest, ADifferenceInAnyFieldIsADifferentSpec) {
  auto timer = Spec("t", Cause::kTimer);
  timer.timer.interval = absl::Seconds(10);
  std::vector<std::function<void(HandlerSpec&)>> edits = {
      [](HandlerSpec& s) { s.timer.interval = absl::Seconds(11); },
      [](HandlerSpec& s) { s.timer.idle = absl::ZeroDuration(); },
      [](HandlerSpec& s) { s.timer.sharp = true; },
      [](HandlerSpec& s) { s.backoff = absl::Seconds(60); },
      [](HandlerSpec& s) { s.timeout = absl::Milliseconds(1500); },
      [](HandlerSpec& s) { s.retries = 0u; },
      [](HandlerSpec& s) { s.errors = ErrorsMode::kPermanent; },
      [](HandlerSpec& s) { s.has_when = true; },
      [](HandlerSpec& s) { s.indices.push_back("by_app"); },
      [](HandlerSpec& s) { s.labels["app"].match = MetaMatch::kPresent; },
      [](HandlerSpec& s) { s.annotations["note"].match = MetaMatch::kAbsent; },
      [](HandlerSpec& s) { s.daemon.cancellation_timeout = absl::Seconds(1); },
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    SCOPED_TRACE(i);
    HandlerSpec other = timer;
    edits[i](other);
    ASSERT_TRUE(ValidateSpec(other).ok()) << ValidateSpec(other);
    Registry r;
    ASSERT_TRUE(r.Add(timer, Kex()).ok());
    EXPECT_TRUE(r.Add(timer, Kex()).ok());
    EXPECT_THAT(r.Add(other, Kex()).message(),
                HasSubstr("already registered with a different spec"));
    Registry pending;
    ASSERT_TRUE(pending.AddPending(timer, "not yet", absl::UnixEpoch()).ok());
    EXPECT_TRUE(pending.AddPending(timer, "still", absl::UnixEpoch()).ok());
    EXPECT_THAT(
        pending.AddPending(other, "not yet", absl::UnixEpoch()).message(),
        HasSubstr("already registered with a different spec"));
  }
}

TEST(RegistryTest, MetaFilters) {
  Registry r;
  auto s = Spec("a", Cause::kCreate);
  s.labels["app"].match = MetaMatch::kEquals;
  s.labels["app"].value = "web";
  s.annotations["skip"].match = MetaMatch::kAbsent;
  s.annotations["owner"].match = MetaMatch::kPresent;
  ASSERT_TRUE(r.Add(s, Kex()).ok());
  const Handler& h = *r.Find("a");
  EXPECT_TRUE(MatchesMeta(
      h,
      json::parse(
          R"({"metadata":{"labels":{"app":"web"},"annotations":{"owner":"me"}}})")));
  EXPECT_FALSE(MatchesMeta(
      h,
      json::parse(
          R"({"metadata":{"labels":{"app":"db"},"annotations":{"owner":"me"}}})")));
  EXPECT_FALSE(MatchesMeta(
      h,
      json::parse(
          R"({"metadata":{"labels":{"app":"web"},"annotations":{"owner":"me","skip":"1"}}})")));
  EXPECT_FALSE(
      MatchesMeta(h, json::parse(R"({"metadata":{"labels":{"app":"web"}}})")));
}

TEST(RegistryTest, FieldFilters) {
  Registry r;
  auto s = Spec("f", Cause::kField);
  s.field = "spec.size";
  s.new_filter.match = ValueMatch::kEquals;
  s.new_filter.value_json = "3";
  ASSERT_TRUE(r.Add(s, Kex()).ok());
  const Handler& h = *r.Find("f");
  auto e = [](int v) { return json{{"spec", {{"size", v}}}}; };
  EXPECT_TRUE(MatchesField(h, e(1), e(3)));
  EXPECT_FALSE(MatchesField(h, e(1), e(2)));
  EXPECT_FALSE(MatchesField(h, e(3), e(3)));  // Unchanged.
  auto any = Spec("g", Cause::kField);
  any.field = "spec.size";
  any.value_filter.match = ValueMatch::kEquals;
  any.value_filter.value_json = "1";
  ASSERT_TRUE(r.Add(any, Kex()).ok());
  EXPECT_TRUE(MatchesField(*r.Find("g"), e(1), e(2)));  // Old matches.
  EXPECT_FALSE(MatchesField(*r.Find("g"), e(2), e(5)));
}

TEST(RegistryTest, EveryResourceChangingHandlerTakesAField) {
  for (Cause cause : {Cause::kCreate, Cause::kUpdate, Cause::kDelete,
                      Cause::kResume, Cause::kField}) {
    auto s = Spec("h", cause);
    s.field = "spec.size";
    s.value_filter.match = ValueMatch::kEquals;
    s.value_filter.value_json = "3";
    EXPECT_TRUE(ValidateSpec(s).ok())
        << CauseName(cause) << ": " << ValidateSpec(s);
  }
  for (Cause cause :
       {Cause::kEvent, Cause::kTimer, Cause::kDaemon, Cause::kIndex}) {
    auto s = Spec("h", cause);
    s.timer.interval = absl::Seconds(1);
    if (cause != Cause::kTimer) s.timer = TimerOptions{};
    s.field = "spec.size";
    EXPECT_THAT(std::string(ValidateSpec(s).message()),
                HasSubstr("field is only for create, update, delete, resume "
                          "and field handlers"))
        << CauseName(cause);
  }
  // Old and new values are about a change: only where one is needed.
  for (Cause cause : {Cause::kCreate, Cause::kDelete, Cause::kResume}) {
    auto s = Spec("h", cause);
    s.field = "spec.size";
    s.old_filter.match = ValueMatch::kPresent;
    EXPECT_THAT(std::string(ValidateSpec(s).message()),
                HasSubstr("old_filter is only for update and field handlers"))
        << CauseName(cause);
    s.old_filter = ValueFilter{};
    s.new_filter.match = ValueMatch::kPresent;
    EXPECT_THAT(std::string(ValidateSpec(s).message()),
                HasSubstr("new_filter is only for update and field handlers"))
        << CauseName(cause);
  }
}

TEST(RegistryTest, FieldsOfCreateResumeAndDeleteMatchOnValuesNotChanges) {
  Registry r;
  auto e = [](int v) { return json{{"spec", {{"size", v}}}}; };
  const json none = json{{"spec", {{"other", 1}}}};
  // field= alone: the field is there, in the old or the new essence.
  auto present = Spec("c", Cause::kCreate);
  present.field = "spec.size";
  ASSERT_TRUE(r.Add(present, Kex()).ok());
  const Handler& c = *r.Find("c");
  EXPECT_TRUE(MatchesField(c, nullptr, e(1)));
  EXPECT_FALSE(MatchesField(c, nullptr, none));
  // No change is needed (resume and delete see equal essences).
  auto resume = Spec("r", Cause::kResume);
  resume.field = "spec.size";
  resume.value_filter.match = ValueMatch::kEquals;
  resume.value_filter.value_json = "3";
  ASSERT_TRUE(r.Add(resume, Kex()).ok());
  EXPECT_TRUE(MatchesField(*r.Find("r"), e(3), e(3)));
  EXPECT_FALSE(MatchesField(*r.Find("r"), e(2), e(2)));
  EXPECT_FALSE(MatchesField(*r.Find("r"), none, none));
  auto absent = Spec("d", Cause::kDelete);
  absent.field = "spec.size";
  absent.value_filter.match = ValueMatch::kAbsent;
  ASSERT_TRUE(r.Add(absent, Kex()).ok());
  EXPECT_TRUE(MatchesField(*r.Find("d"), none, none));
  EXPECT_FALSE(MatchesField(*r.Find("d"), e(1), e(1)));
  // Update handlers with a field still need it to change.
  auto update = Spec("u", Cause::kUpdate);
  update.field = "spec.size";
  ASSERT_TRUE(r.Add(update, Kex()).ok());
  EXPECT_TRUE(MatchesField(*r.Find("u"), e(1), e(2)));
  EXPECT_FALSE(MatchesField(*r.Find("u"), e(2), e(2)));
  // Without a field, nothing to match.
  ASSERT_TRUE(r.Add(Spec("plain", Cause::kCreate), Kex()).ok());
  EXPECT_TRUE(MatchesField(*r.Find("plain"), nullptr, none));
}

}  // namespace
}  // namespace herald::engine
