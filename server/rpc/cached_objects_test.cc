#include "server/rpc/cached_objects.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/engine/test_resources.h"

namespace herald::rpc {
namespace {

using ::herald::engine::testing::Kex;
using nlohmann::json;

void Put(cache::ObjectStore* store, const std::string& ns,
         const std::string& name, json labels) {
  json body = {{"apiVersion", "kopf.dev/v1"},
               {"kind", "KopfExample"},
               {"metadata", {{"namespace", ns}, {"name", name}}}};
  if (!labels.is_null()) body["metadata"]["labels"] = std::move(labels);
  store->Upsert({{ns, name}, "uid-" + name, "1", body.dump()});
}

v1::GetObjectRequest ObjectRequest(const std::string& resource,
                                   const std::string& ns,
                                   const std::string& name) {
  v1::GetObjectRequest request;
  request.set_resource(resource);
  request.set_namespace_(ns);
  request.set_name(name);
  return request;
}

class CachedObjectsTest : public ::testing::Test {
 protected:
  CachedObjectsTest() {
    Put(&store_, "a", "web-1", {{"app", "web"}, {"tier", "front"}});
    Put(&store_, "a", "db-1", {{"app", "db"}});
    Put(&store_, "b", "web-2", {{"app", "web"}, {"debug", "1"}});
    Put(&store_, "b", "bare", nullptr);
    Put(&store_, "c", "numeric", {{"app", 5}});  // Not a string: no label.
    caches_.push_back({"kopfexamples.v1.kopf.dev", KexShort(), &store_});
  }

  static kube::ResourceInfo KexShort() {
    kube::ResourceInfo r = Kex();
    r.short_names = {"kex"};
    return r;
  }

  // The names of the objects a request lists, in order.
  std::vector<std::string> Names(const v1::ListObjectsRequest& request,
                                 std::string* next = nullptr) {
    auto query = ParseObjectQuery(request);
    EXPECT_TRUE(query.ok()) << query.status();
    if (!query.ok()) return {};
    v1::ListObjectsResponse response;
    ListObjects(store_, request.namespace_(), *query, &response);
    std::vector<std::string> names;
    for (const auto& o : response.objects()) {
      names.push_back(o.fields()
                          .at("metadata")
                          .struct_value()
                          .fields()
                          .at("name")
                          .string_value());
    }
    if (next != nullptr) *next = response.next_page_token();
    return names;
  }

  std::vector<std::string> Selected(const std::string& selector) {
    v1::ListObjectsRequest request;
    request.set_label_selector(selector);
    return Names(request);
  }

  cache::ObjectStore store_;
  std::vector<engine::WatchedCache> caches_;
};

using Strings = std::vector<std::string>;

TEST_F(CachedObjectsTest, AllObjectsInKeyOrder) {
  EXPECT_EQ(Selected(""),
            (Strings{"db-1", "web-1", "bare", "web-2", "numeric"}));
}

TEST_F(CachedObjectsTest, OneNamespace) {
  v1::ListObjectsRequest request;
  request.set_namespace_("b");
  EXPECT_EQ(Names(request), (Strings{"bare", "web-2"}));
  request.set_namespace_("none");
  EXPECT_TRUE(Names(request).empty());
}

TEST_F(CachedObjectsTest, LabelSelectors) {
  EXPECT_EQ(Selected("app=web"), (Strings{"web-1", "web-2"}));
  EXPECT_EQ(Selected("app==web,tier=front"), (Strings{"web-1"}));
  // != and notin also match objects without the label.
  EXPECT_EQ(Selected("app!=web"), (Strings{"db-1", "bare", "numeric"}));
  EXPECT_EQ(Selected("app in (db,web)"), (Strings{"db-1", "web-1", "web-2"}));
  EXPECT_EQ(Selected("app notin (web)"), (Strings{"db-1", "bare", "numeric"}));
  EXPECT_EQ(Selected("debug"), (Strings{"web-2"}));
  EXPECT_EQ(Selected("!debug,app"), (Strings{"db-1", "web-1"}));
  EXPECT_EQ(Selected("debug>0"), (Strings{"web-2"}));
  EXPECT_TRUE(Selected("app=none").empty());
}

TEST_F(CachedObjectsTest, PagesOfMatchingObjects) {
  v1::ListObjectsRequest request;
  request.set_label_selector("app");
  request.set_page_size(2);
  std::string next;
  EXPECT_EQ(Names(request, &next), (Strings{"db-1", "web-1"}));
  EXPECT_EQ(next, "2");
  request.set_page_token(next);
  EXPECT_EQ(Names(request, &next), (Strings{"web-2"}));
  EXPECT_EQ(next, "");
  // A last page that is exactly full has no next page.
  request.set_page_token("1");
  EXPECT_EQ(Names(request, &next), (Strings{"web-1", "web-2"}));
  EXPECT_EQ(next, "");
}

TEST_F(CachedObjectsTest, BadRequestsNameWhatIsWrong) {
  v1::ListObjectsRequest request;
  request.set_label_selector("app in (a,b");
  auto query = ParseObjectQuery(request);
  EXPECT_EQ(query.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(query.status().message(),
            "label_selector \"app in (a,b\": at column 12: found the end, "
            "expected ',' or ')'");
  request.clear_label_selector();
  request.set_page_token("x");
  query = ParseObjectQuery(request);
  EXPECT_EQ(query.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(query.status().message(), "page_token: not one this service gave");
}

TEST_F(CachedObjectsTest, DefaultPageSize) {
  auto query = ParseObjectQuery(v1::ListObjectsRequest());
  ASSERT_TRUE(query.ok());
  EXPECT_EQ(query->page_size, 100u);
  EXPECT_EQ(query->skip, 0u);
  EXPECT_TRUE(query->selector.empty());
}

TEST_F(CachedObjectsTest, FindsCachesByAnyName) {
  for (const char* name : {"kex", "kopfexamples", "KopfExample.kopf.dev",
                           "kopfexamples.v1.kopf.dev"}) {
    EXPECT_EQ(FindCache(caches_, name), &caches_[0]) << name;
  }
  EXPECT_EQ(FindCache(caches_, "pods"), nullptr);
  EXPECT_EQ(FindCache({}, "kex"), nullptr);
}

TEST_F(CachedObjectsTest, FindsOneObject) {
  v1::GetObjectRequest request = ObjectRequest("kex", "a", "web-1");
  auto found = FindObject(caches_, request);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->key.ns, "a");
  EXPECT_EQ(found->key.name, "web-1");
  EXPECT_EQ(found->resource.plural, "kopfexamples");
  EXPECT_EQ(found->what, "kopfexamples.v1.kopf.dev a/web-1");
  v1::GetObjectResponse response;
  ASSERT_TRUE(AddObject(*found, &response).ok());
  EXPECT_EQ(response.object().fields().at("kind").string_value(),
            "KopfExample");

  request.set_name("web-9");
  EXPECT_EQ(FindObject(caches_, request).status().message(),
            "kopfexamples.v1.kopf.dev a/web-9 is not in the cache");
  request.set_resource("pods");
  EXPECT_EQ(FindObject(caches_, request).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(FindObject(caches_, request).status().message(),
            "resource 'pods' is not watched");
}

TEST_F(CachedObjectsTest, ClusterScopedObjectsIgnoreTheNamespace) {
  cache::ObjectStore store;
  store.Upsert({{"", "node-1"}, "u", "1", R"({"metadata":{"name":"node-1"}})"});
  kube::ResourceInfo nodes;
  nodes.version = "v1";
  nodes.plural = "nodes";
  nodes.kind = "Node";
  nodes.namespaced = false;
  std::vector<engine::WatchedCache> caches = {{"nodes.v1", nodes, &store}};
  auto found = FindObject(caches, ObjectRequest("nodes", "whatever", "node-1"));
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->what, "nodes.v1 node-1");
}

TEST_F(CachedObjectsTest, AnObjectThatIsNoJsonObjectIsAnInternalError) {
  FoundObject found;
  found.what = "kopfexamples.v1.kopf.dev a/broken";
  found.object = std::make_shared<cache::CachedObject>(
      cache::CachedObject{{"a", "broken"}, "u", "1", "[1]"});
  v1::GetObjectResponse response;
  absl::Status st = AddObject(found, &response);
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(st.message(),
            "kopfexamples.v1.kopf.dev a/broken: the cached object cannot be "
            "shown as a google.protobuf.Struct: it is not an object");
}

TEST_F(CachedObjectsTest, MemoAndProgress) {
  FoundObject found;
  found.what = "kopfexamples.v1.kopf.dev a/web-1";
  engine::ObjectStateSnapshot state;
  state.memo = json{{"count", 2}};
  engine::ProgressSnapshot p;
  p.handler_id = "create_fn";
  p.record.purpose = "create";
  p.record.success = true;
  state.progress.push_back(p);
  v1::GetObjectResponse response;
  ASSERT_TRUE(AddObjectState(found, state, &response).ok());
  EXPECT_TRUE(response.has_memo());
  EXPECT_EQ(response.memo().fields().at("count").number_value(), 2);
  ASSERT_EQ(response.progress_size(), 1);
  EXPECT_EQ(response.progress(0).handler_id(), "create_fn");
  EXPECT_TRUE(response.progress(0).success());

  // No memo: none in the answer.
  v1::GetObjectResponse bare;
  ASSERT_TRUE(AddObjectState(found, {}, &bare).ok());
  EXPECT_FALSE(bare.has_memo());
  EXPECT_EQ(bare.progress_size(), 0);

  // A memo that is no object.
  engine::ObjectStateSnapshot odd;
  odd.memo = json::array({1});
  v1::GetObjectResponse r;
  absl::Status st = AddObjectState(found, odd, &r);
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(st.message(),
            "kopfexamples.v1.kopf.dev a/web-1: the memo cannot be shown as a "
            "google.protobuf.Struct: it is not an object");
}

}  // namespace
}  // namespace herald::rpc
