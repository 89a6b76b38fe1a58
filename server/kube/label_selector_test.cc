#include "server/kube/label_selector.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald::kube {
namespace {

using ::testing::HasSubstr;
using Labels = std::map<std::string, std::string>;

// Valid selectors and their canonical form (selector.go's String()).
TEST(LabelSelectorTest, ParsesKubectlSyntax) {
  struct Case {
    std::string in, canonical;
  };
  const Case cases[] = {
      {"", ""},
      {"   ", ""},
      {"x=a,y=b,z=c", "x=a,y=b,z=c"},
      {"x!=a,y=b", "x!=a,y=b"},
      {"x==a", "x==a"},
      {"x=", "x="},
      {"x= ", "x="},
      {"x=,z= ", "x=,z="},
      {"!x", "!x"},
      {"x", "x"},
      {"\rx", "x"},
      {"x>1", "x>1"},
      {"x>1,z<5", "x>1,z<5"},
      {"app in (a,b)", "app in (a,b)"},
      {"app in (b,a,b)", "app in (a,b)"},
      {"app notin (a)", "app notin (a)"},
      {"foo  in\t (abc)", "foo in (abc)"},
      {"x notin\n (abc)", "x notin (abc)"},
      {"x in (abc,)", "x in (,abc)"},
      {"x in ()", "x in ()"},
      {"x in (,)", "x in ()"},
      {"x in (a,,b)", "x in (,a,b)"},
      {"x in (a,,,)", "x in (,a)"},
      // Sorted by key; "in" and "notin" are values where values go.
      {"z,a=b", "a=b,z"},
      {"notin=in", "notin=in"},
      {"in", "in"},
      {"x in (in,notin)", "x in (in,notin)"},
      {"this-is-a-dns.domain.com/key-with-dash",
       "this-is-a-dns.domain.com/key-with-dash"},
      {"0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
       "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)"},
      {"app.kubernetes.io/name=web,!debug,tier!=db",
       "app.kubernetes.io/name=web,!debug,tier!=db"},
  };
  for (const auto& c : cases) {
    auto s = LabelSelector::Parse(c.in);
    ASSERT_TRUE(s.ok()) << "'" << c.in << "': " << s.status();
    EXPECT_EQ(s->ToString(), c.canonical) << "'" << c.in << "'";
  }
}

// Invalid selectors: the message says what is wrong and at which column.
TEST(LabelSelectorTest, RejectsBadSelectorsNamingWhatAndWhere) {
  struct Case {
    std::string in, error;
  };
  const Case cases[] = {
      {"=,=,!", "at column 1: found '=', expected a key or '!'"},
      {"app in (a,b", "at column 12: found the end, expected ',' or ')'"},
      {"app in a", "at column 8: found 'a', expected '('"},
      {"app in", "at column 7: found the end, expected '('"},
      {"app in (a b)", "at column 11: found 'b', expected ',' or ')'"},
      {"app in (=)", "at column 9: found '=', expected a value, ',' or ')'"},
      {"x in (a,,)", "at column 10: found ')', expected a value or ','"},
      {"x=a||y=b", "at column 3: invalid value 'a||y'"},
      {"x==a==b", "at column 5: found '==', expected ',' or the end"},
      {"!x=a", "at column 3: found '=', expected ',' or the end"},
      {"x<a", "at column 3: '>' and '<' need an integer, found 'a'"},
      {"x>", "at column 3: '>' and '<' need an integer, found nothing"},
      {"x,", "at column 3: found the end, expected a key or '!' after ','"},
      {",x", "at column 1: found ',', expected a key or '!'"},
      {"x y",
       "at column 3: found 'y' after key 'x', expected one of: in, "
       "notin, =, ==, !=, >, <, ',' or the end"},
      {"!", "at column 2: found the end, expected a key"},
      {"!!x", "at column 2: found '!', expected a key"},
      {"not a/valid//key!!", "at column 5: found 'a/valid//key' after key"},
      {"a/valid//key",
       "at column 1: invalid key 'a/valid//key': more than "
       "one '/'"},
      {"Example.com/x",
       "invalid key 'Example.com/x': the prefix "
       "'Example.com' is not a DNS subdomain"},
      {"/x", "invalid key '/x': the prefix before '/' is empty"},
      {"example.com/",
       "invalid key 'example.com/': the name after '/' is "
       "empty"},
      {"-x=1", "invalid key '-x': the name '-x' must consist of"},
      {std::string(64, 'a'), "the name is 64 characters long, more than 63"},
      {"app=-web", "at column 5: invalid value '-web' for key 'app'"},
      {"app in (ok," + std::string(64, 'v') + ")",
       "at column 12: invalid value 'vvvv"},
  };
  for (const auto& c : cases) {
    auto s = LabelSelector::Parse(c.in);
    ASSERT_FALSE(s.ok()) << "'" << c.in << "' parsed as " << s->ToString();
    EXPECT_TRUE(absl::IsInvalidArgument(s.status()));
    EXPECT_THAT(std::string(s.status().message()), HasSubstr(c.error))
        << "'" << c.in << "'";
  }
}

TEST(LabelSelectorTest, MatchesAsKubernetesDoes) {
  struct Case {
    std::string selector;
    Labels labels;
    bool match;
  };
  const Labels foo_baz = {{"foo", "bar"}, {"baz", "blah"}};
  const Case cases[] = {
      {"", {{"x", "y"}}, true},
      {"", {}, true},
      {"x=y", {{"x", "y"}}, true},
      {"x==y", {{"x", "y"}}, true},
      {"x=y,z=w", {{"x", "y"}, {"z", "w"}}, true},
      {"x!=y,z!=w", {{"x", "z"}, {"z", "a"}}, true},
      {"notin=in", {{"notin", "in"}}, true},
      {"x", {{"x", "z"}}, true},
      {"!x", {{"y", "z"}}, true},
      {"x>1", {{"x", "2"}}, true},
      {"x<1", {{"x", "0"}}, true},
      {"x=z", {}, false},
      {"x=y", {{"x", "z"}}, false},
      {"x=y,z=w", {{"x", "w"}, {"z", "w"}}, false},
      {"x!=y,z!=w", {{"x", "z"}, {"z", "w"}}, false},
      {"x", {{"y", "z"}}, false},
      {"!x", {{"x", "z"}}, false},
      {"x>1", {{"x", "0"}}, false},
      {"x<1", {{"x", "2"}}, false},
      {"x>1", {{"x", "v2"}}, false},
      {"x>1", {}, false},
      {"foo=bar,baz=blah", foo_baz, true},
      {"foo=blah", foo_baz, false},
      {"foo=bar,foobar=bar,baz=blah", foo_baz, false},
      // Set-based.
      {"app in (a,b)", {{"app", "a"}}, true},
      {"app in (a,b)", {{"app", "b"}}, true},
      {"app in (a,b)", {{"app", "c"}}, false},
      {"app in (a,b)", {}, false},
      {"app notin (a,b)", {{"app", "c"}}, true},
      {"app notin (a,b)", {{"app", "a"}}, false},
      // notin and != also match objects without the label, as in Kubernetes.
      {"app notin (a,b)", {}, true},
      {"app!=a", {}, true},
      // The empty value is a value.
      {"x in ()", {{"x", ""}}, true},
      {"x in ()", {{"y", "baz"}}, false},
      {"x notin (),y", {{"y", ""}}, true},
      {"!x,y", {{"y", ""}}, true},
      {"x notin (),!y", {{"y", ""}}, false},
      {"x=", {{"x", ""}}, true},
      {"x=", {{"x", "a"}}, false},
      {"x,y in (a)", {{"x", "1"}}, false},
      {"x,y in (a)", {{"x", "1"}, {"y", "a"}}, true},
  };
  for (const auto& c : cases) {
    auto s = LabelSelector::Parse(c.selector);
    ASSERT_TRUE(s.ok()) << c.selector << ": " << s.status();
    EXPECT_EQ(s->Matches(c.labels), c.match) << "'" << c.selector << "'";
  }
}

TEST(LabelSelectorTest, QualifiedNames) {
  const std::string ok[] = {
      "a",
      "A",
      "1234",
      "my.name",
      "my_name-1",
      "MyName",
      "example.com/MyName",
      "a.b-c.d/e",
      "kopf.zalando.org/last-handled-configuration",
      std::string(63, 'x'),
      std::string(253, 'p') + "/" + std::string(63, 'n'),
  };
  for (const auto& k : ok) EXPECT_EQ(QualifiedNameError(k), "") << k;
  const std::string bad[] = {
      "",
      "-a",
      "a-",
      "a b",
      "a!",
      "a/b/c",
      "/a",
      "a/",
      "A.com/x",
      "a..b/x",
      "-a.com/x",
      "not a/valid//key!!",
      std::string(64, 'x'),
      std::string(254, 'p') + "/n",
  };
  for (const auto& k : bad) EXPECT_NE(QualifiedNameError(k), "") << k;
}

TEST(LabelSelectorTest, LabelValues) {
  const std::string ok[] = {"", "a", "A-b_c.1", std::string(63, 'v')};
  for (const auto& v : ok) EXPECT_EQ(LabelValueError(v), "") << v;
  const std::string bad[] = {"-a", "a-", "a b", "a/b", std::string(64, 'v')};
  for (const auto& v : bad) EXPECT_NE(LabelValueError(v), "") << v;
}

}  // namespace
}  // namespace herald::kube
