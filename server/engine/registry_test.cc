#include "server/engine/registry.h"

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
  EXPECT_TRUE(ValidateSpec(Spec("a", v1::CAUSE_CREATE)).ok());
  EXPECT_THAT(ValidateSpec(Spec("", v1::CAUSE_CREATE)).message(),
              HasSubstr("id"));
  EXPECT_THAT(ValidateSpec(Spec("a", v1::CAUSE_UNSPECIFIED)).message(),
              HasSubstr("cause is unspecified"));
  EXPECT_THAT(ValidateSpec(Spec("a", v1::CAUSE_FIELD)).message(),
              HasSubstr("needs a field"));
  EXPECT_THAT(ValidateSpec(Spec("t", v1::CAUSE_TIMER)).message(),
              HasSubstr("positive interval"));
  auto timer = Spec("t", v1::CAUSE_TIMER);
  timer.mutable_timer()->mutable_interval()->set_seconds(5);
  EXPECT_TRUE(ValidateSpec(timer).ok());
  EXPECT_TRUE(ValidateSpec(Spec("i", v1::CAUSE_INDEX)).ok());
  EXPECT_TRUE(ValidateSpec(Spec("d", v1::CAUSE_DAEMON)).ok());
  auto by_label = Spec("i", v1::CAUSE_INDEX);
  by_label.mutable_index()->set_label("app");
  EXPECT_TRUE(ValidateSpec(by_label).ok());
  auto by_nothing = Spec("i", v1::CAUSE_INDEX);
  by_nothing.mutable_index();
  EXPECT_THAT(ValidateSpec(by_nothing).message(),
              HasSubstr("needs a label or a field"));
  auto misplaced = Spec("c", v1::CAUSE_CREATE);
  misplaced.mutable_index()->set_label("app");
  EXPECT_THAT(ValidateSpec(misplaced).message(),
              HasSubstr("index options are for index handlers"));
  // Activities have no resource; everything else needs one.
  auto startup = Spec("s", v1::CAUSE_STARTUP);
  EXPECT_THAT(ValidateSpec(startup).message(), HasSubstr("has no resource"));
  startup.clear_resource();
  EXPECT_TRUE(ValidateSpec(startup).ok());
  auto probe = Spec("p", v1::CAUSE_PROBE);
  probe.clear_resource();
  EXPECT_TRUE(ValidateSpec(probe).ok());
  auto create = Spec("c", v1::CAUSE_CREATE);
  create.clear_resource();
  EXPECT_THAT(ValidateSpec(create).message(), HasSubstr("resource is empty"));
  auto s = Spec("a", v1::CAUSE_CREATE);
  (*s.mutable_labels())["x"];  // match left unspecified
  EXPECT_THAT(ValidateSpec(s).message(), HasSubstr("label filter 'x'"));
  auto v = Spec("a", v1::CAUSE_FIELD);
  v.set_field("spec.x");
  v.mutable_value_filter()->set_match(v1::VALUE_MATCH_EQUALS);
  v.mutable_value_filter()->set_value_json("{nope");
  EXPECT_THAT(ValidateSpec(v).message(), HasSubstr("value_json is not JSON"));
}

TEST(RegistryTest, LabelAndAnnotationKeysFollowKubernetesRules) {
  auto labels = [](const std::string& key, v1::MetaMatch match,
                   const std::string& value = "") {
    auto s = Spec("a", v1::CAUSE_CREATE);
    (*s.mutable_labels())[key].set_match(match);
    (*s.mutable_labels())[key].set_value(value);
    return ValidateSpec(s);
  };
  auto annotations = [](const std::string& key) {
    auto s = Spec("a", v1::CAUSE_CREATE);
    (*s.mutable_annotations())[key].set_match(v1::META_MATCH_PRESENT);
    return ValidateSpec(s);
  };
  EXPECT_TRUE(labels("app", v1::META_MATCH_PRESENT).ok());
  EXPECT_TRUE(
      labels("app.kubernetes.io/name", v1::META_MATCH_EQUALS, "web").ok());
  EXPECT_TRUE(labels("x", v1::META_MATCH_EQUALS, "").ok());
  absl::Status st = labels("not a/valid//key!!", v1::META_MATCH_PRESENT);
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(),
              HasSubstr("label filter 'not a/valid//key!!': not a valid "
                        "label key: more than one '/'"));
  EXPECT_THAT(labels("-app", v1::META_MATCH_ABSENT).message(),
              HasSubstr("the name '-app' must consist of letters, digits"));
  EXPECT_THAT(labels("Example.com/app", v1::META_MATCH_PRESENT).message(),
              HasSubstr("the prefix 'Example.com' is not a DNS subdomain"));
  EXPECT_THAT(labels(std::string(64, 'k'), v1::META_MATCH_PRESENT).message(),
              HasSubstr("64 characters long, more than 63"));
  EXPECT_THAT(labels("app", v1::META_MATCH_EQUALS, "a b").message(),
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

  auto index = Spec("i", v1::CAUSE_INDEX);
  index.mutable_index()->set_label("app/");
  EXPECT_THAT(ValidateSpec(index).message(),
              HasSubstr("index label 'app/': not a valid label key"));
}

TEST(RegistryTest, FieldPathsAreDotSeparatedNonEmptyKeys) {
  auto field = [](const std::string& path) {
    auto s = Spec("f", v1::CAUSE_FIELD);
    s.set_field(path);
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
  auto update = Spec("u", v1::CAUSE_UPDATE);
  update.set_field("spec..x");
  EXPECT_THAT(ValidateSpec(update).message(), HasSubstr("segment 2 is empty"));
  auto index = Spec("i", v1::CAUSE_INDEX);
  index.mutable_index()->set_field("spec.nodeName.");
  EXPECT_THAT(ValidateSpec(index).message(),
              HasSubstr("index field 'spec.nodeName.': segment 3 is empty"));
}

TEST(RegistryTest, AddRejectsWhatValidateSpecRejects) {
  Registry registry;
  auto s = Spec("a", v1::CAUSE_CREATE);
  (*s.mutable_labels())["bad key"].set_match(v1::META_MATCH_PRESENT);
  EXPECT_THAT(registry.Add(s, Kex()).message(),
              HasSubstr("not a valid label key"));
  EXPECT_EQ(registry.Find("a"), nullptr);
}

TEST(RegistryTest, SameIdSameSpecIsFineDifferentSpecIsRejected) {
  Registry r;
  ASSERT_TRUE(r.Add(Spec("a", v1::CAUSE_CREATE), Kex()).ok());
  EXPECT_TRUE(r.Add(Spec("a", v1::CAUSE_CREATE), Kex()).ok());
  auto st = r.Add(Spec("a", v1::CAUSE_UPDATE), Kex());
  EXPECT_THAT(st.message(),
              HasSubstr("already registered with a different spec"));
  EXPECT_EQ(r.ForResource("kopfexamples.v1.kopf.dev").size(), 1u);
}

TEST(RegistryTest, MetaFilters) {
  Registry r;
  auto s = Spec("a", v1::CAUSE_CREATE);
  (*s.mutable_labels())["app"].set_match(v1::META_MATCH_EQUALS);
  (*s.mutable_labels())["app"].set_value("web");
  (*s.mutable_annotations())["skip"].set_match(v1::META_MATCH_ABSENT);
  (*s.mutable_annotations())["owner"].set_match(v1::META_MATCH_PRESENT);
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
  auto s = Spec("f", v1::CAUSE_FIELD);
  s.set_field("spec.size");
  s.mutable_new_filter()->set_match(v1::VALUE_MATCH_EQUALS);
  s.mutable_new_filter()->set_value_json("3");
  ASSERT_TRUE(r.Add(s, Kex()).ok());
  const Handler& h = *r.Find("f");
  auto e = [](int v) { return json{{"spec", {{"size", v}}}}; };
  EXPECT_TRUE(MatchesField(h, e(1), e(3)));
  EXPECT_FALSE(MatchesField(h, e(1), e(2)));
  EXPECT_FALSE(MatchesField(h, e(3), e(3)));  // Unchanged.
  auto any = Spec("g", v1::CAUSE_FIELD);
  any.set_field("spec.size");
  any.mutable_value_filter()->set_match(v1::VALUE_MATCH_EQUALS);
  any.mutable_value_filter()->set_value_json("1");
  ASSERT_TRUE(r.Add(any, Kex()).ok());
  EXPECT_TRUE(MatchesField(*r.Find("g"), e(1), e(2)));  // Old matches.
  EXPECT_FALSE(MatchesField(*r.Find("g"), e(2), e(5)));
}

TEST(RegistryTest, EveryResourceChangingHandlerTakesAField) {
  for (v1::Cause cause : {v1::CAUSE_CREATE, v1::CAUSE_UPDATE, v1::CAUSE_DELETE,
                          v1::CAUSE_RESUME, v1::CAUSE_FIELD}) {
    auto s = Spec("h", cause);
    s.set_field("spec.size");
    s.mutable_value_filter()->set_match(v1::VALUE_MATCH_EQUALS);
    s.mutable_value_filter()->set_value_json("3");
    EXPECT_TRUE(ValidateSpec(s).ok())
        << v1::Cause_Name(cause) << ": " << ValidateSpec(s);
  }
  for (v1::Cause cause :
       {v1::CAUSE_EVENT, v1::CAUSE_TIMER, v1::CAUSE_DAEMON, v1::CAUSE_INDEX}) {
    auto s = Spec("h", cause);
    s.mutable_timer()->mutable_interval()->set_seconds(1);
    if (cause != v1::CAUSE_TIMER) s.clear_timer();
    s.set_field("spec.size");
    EXPECT_THAT(std::string(ValidateSpec(s).message()),
                HasSubstr("field is only for create, update, delete, resume "
                          "and field handlers"))
        << v1::Cause_Name(cause);
  }
  // Old and new values are about a change: only where one is needed.
  for (v1::Cause cause :
       {v1::CAUSE_CREATE, v1::CAUSE_DELETE, v1::CAUSE_RESUME}) {
    auto s = Spec("h", cause);
    s.set_field("spec.size");
    s.mutable_old_filter()->set_match(v1::VALUE_MATCH_PRESENT);
    EXPECT_THAT(std::string(ValidateSpec(s).message()),
                HasSubstr("old_filter is only for update and field handlers"))
        << v1::Cause_Name(cause);
    s.clear_old_filter();
    s.mutable_new_filter()->set_match(v1::VALUE_MATCH_PRESENT);
    EXPECT_THAT(std::string(ValidateSpec(s).message()),
                HasSubstr("new_filter is only for update and field handlers"))
        << v1::Cause_Name(cause);
  }
}

TEST(RegistryTest, FieldsOfCreateResumeAndDeleteMatchOnValuesNotChanges) {
  Registry r;
  auto e = [](int v) { return json{{"spec", {{"size", v}}}}; };
  const json none = json{{"spec", {{"other", 1}}}};
  // field= alone: the field is there, in the old or the new essence.
  auto present = Spec("c", v1::CAUSE_CREATE);
  present.set_field("spec.size");
  ASSERT_TRUE(r.Add(present, Kex()).ok());
  const Handler& c = *r.Find("c");
  EXPECT_TRUE(MatchesField(c, nullptr, e(1)));
  EXPECT_FALSE(MatchesField(c, nullptr, none));
  // No change is needed (resume and delete see equal essences).
  auto resume = Spec("r", v1::CAUSE_RESUME);
  resume.set_field("spec.size");
  resume.mutable_value_filter()->set_match(v1::VALUE_MATCH_EQUALS);
  resume.mutable_value_filter()->set_value_json("3");
  ASSERT_TRUE(r.Add(resume, Kex()).ok());
  EXPECT_TRUE(MatchesField(*r.Find("r"), e(3), e(3)));
  EXPECT_FALSE(MatchesField(*r.Find("r"), e(2), e(2)));
  EXPECT_FALSE(MatchesField(*r.Find("r"), none, none));
  auto absent = Spec("d", v1::CAUSE_DELETE);
  absent.set_field("spec.size");
  absent.mutable_value_filter()->set_match(v1::VALUE_MATCH_ABSENT);
  ASSERT_TRUE(r.Add(absent, Kex()).ok());
  EXPECT_TRUE(MatchesField(*r.Find("d"), none, none));
  EXPECT_FALSE(MatchesField(*r.Find("d"), e(1), e(1)));
  // Update handlers with a field still need it to change.
  auto update = Spec("u", v1::CAUSE_UPDATE);
  update.set_field("spec.size");
  ASSERT_TRUE(r.Add(update, Kex()).ok());
  EXPECT_TRUE(MatchesField(*r.Find("u"), e(1), e(2)));
  EXPECT_FALSE(MatchesField(*r.Find("u"), e(2), e(2)));
  // Without a field, nothing to match.
  ASSERT_TRUE(r.Add(Spec("plain", v1::CAUSE_CREATE), Kex()).ok());
  EXPECT_TRUE(MatchesField(*r.Find("plain"), nullptr, none));
}

}  // namespace
}  // namespace herald::engine
