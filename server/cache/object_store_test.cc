#include "server/cache/object_store.h"

#include "gtest/gtest.h"

namespace herald::cache {
namespace {

CachedObject Obj(std::string ns, std::string name, std::string rv,
                 std::string uid = "u") {
  CachedObject o;
  o.key = {ns, name};
  o.uid = uid + "-" + ns + "-" + name;
  o.resource_version = rv;
  o.json = "{\"rv\":\"" + rv + "\"}";
  return o;
}

TEST(ObjectStoreTest, UpsertReportsWhatChanged) {
  ObjectStore s;
  EXPECT_EQ(s.Upsert(Obj("a", "x", "1")), ObjectStore::Change::kAdded);
  EXPECT_EQ(s.Upsert(Obj("a", "x", "1")), ObjectStore::Change::kUnchanged);
  EXPECT_EQ(s.Upsert(Obj("a", "x", "2")), ObjectStore::Change::kModified);
  // Same name, new uid: the object was recreated.
  EXPECT_EQ(s.Upsert(Obj("a", "x", "2", "other")),
            ObjectStore::Change::kModified);
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.Get({"a", "x"})->resource_version, "2");
  EXPECT_EQ(s.json_bytes(), s.Get({"a", "x"})->json.size());
}

TEST(ObjectStoreTest, ListAndVersionsByNamespace) {
  ObjectStore s;
  s.Upsert(Obj("a", "x", "1"));
  s.Upsert(Obj("a", "y", "2"));
  s.Upsert(Obj("b", "x", "3"));
  s.Upsert(Obj("", "cluster", "4"));
  EXPECT_EQ(s.List("a", false).size(), 2u);
  EXPECT_EQ(s.List("b", false).size(), 1u);
  EXPECT_EQ(s.List("", true).size(), 4u);
  auto v = s.Versions("a", false);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ((v[{"a", "y"}]), "2");
  EXPECT_EQ(s.Versions("", true).size(), 4u);
  EXPECT_EQ(s.Versions("", false).size(), 1u);
}

TEST(ObjectStoreTest, RemoveReturnsTheObjectAndReadersKeepTheirCopy) {
  ObjectStore s;
  s.Upsert(Obj("a", "x", "1"));
  auto held = s.Get({"a", "x"});
  auto removed = s.Remove({"a", "x"});
  ASSERT_NE(removed, nullptr);
  EXPECT_EQ(s.Remove({"a", "x"}), nullptr);
  EXPECT_EQ(held->resource_version, "1");
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.json_bytes(), 0u);
}

}  // namespace
}  // namespace herald::cache
