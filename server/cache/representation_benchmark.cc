// Measures what keeping N watched objects costs in heap, by representation:
// an nlohmann/json DOM, a RapidJSON DOM, and the minified JSON text the
// ObjectStore keeps. Objects are pod-like, about 2.5 KB of JSON each, with
// varied strings so that nothing is shared.
//
//   bazel run -c opt //server/cache:representation_benchmark -- 10000

#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "rapidjson/document.h"
#include "server/cache/object_store.h"

namespace {

size_t HeapInUse() { return mallinfo2().uordblks; }

std::string MakeObject(int i) {
  nlohmann::json o = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"name", absl::StrCat("web-", i, "-7d9f8b6c5d-x", i * 7919 % 100000)},
        {"namespace", absl::StrCat("team-", i % 50)},
        {"uid", absl::StrCat("6f1c2d3e-", i, "-4a5b-8c9d-0e1f2a3b4c5d")},
        {"resourceVersion", std::to_string(100000 + i)},
        {"creationTimestamp", "2026-11-24T13:57:00Z"},
        {"labels",
         {{"app", "web"},
          {"pod-template-hash", absl::StrCat("7d9f8b6c5d", i % 97)},
          {"tier", "frontend"}}},
        {"annotations",
         {{"kubectl.kubernetes.io/restartedAt",
           absl::StrCat("2026-11-2", i % 10, "T10:00:00Z")}}},
        {"ownerReferences",
         {{{"apiVersion", "apps/v1"},
           {"kind", "ReplicaSet"},
           {"name", absl::StrCat("web-7d9f8b6c5d", i % 97)},
           {"uid", absl::StrCat("aa", i, "-bb")},
           {"controller", true},
           {"blockOwnerDeletion", true}}}}}},
      {"spec",
       {{"containers",
         {{{"name", "web"},
           {"image", "registry.example/web:1.2.3"},
           {"ports", {{{"containerPort", 8080}, {"protocol", "TCP"}}}},
           {"env",
            {{{"name", "POD_INDEX"}, {"value", std::to_string(i)}},
             {{"name", "MODE"}, {"value", "production"}}}},
           {"resources",
            {{"limits", {{"cpu", "500m"}, {"memory", "256Mi"}}},
             {"requests", {{"cpu", "100m"}, {"memory", "128Mi"}}}}},
           {"volumeMounts",
            {{{"name", "kube-api-access"},
              {"mountPath", "/var/run/secrets/kubernetes.io/serviceaccount"},
              {"readOnly", true}}}}}}},
        {"nodeName", absl::StrCat("node-", i % 20)},
        {"restartPolicy", "Always"},
        {"serviceAccountName", "default"},
        {"tolerations",
         {{{"key", "node.kubernetes.io/not-ready"},
           {"operator", "Exists"},
           {"effect", "NoExecute"},
           {"tolerationSeconds", 300}}}}}},
      {"status",
       {{"phase", "Running"},
        {"podIP", absl::StrCat("10.1.", i / 250 % 250, ".", i % 250)},
        {"conditions",
         {{{"type", "Ready"},
           {"status", "True"},
           {"lastTransitionTime", "2026-11-24T13:58:00Z"}},
          {{"type", "ContainersReady"},
           {"status", "True"},
           {"lastTransitionTime", "2026-11-24T13:58:00Z"}},
          {{"type", "PodScheduled"},
           {"status", "True"},
           {"lastTransitionTime", "2026-11-24T13:57:01Z"}}}},
        {"containerStatuses",
         {{{"name", "web"},
           {"ready", true},
           {"restartCount", i % 3},
           {"image", "registry.example/web:1.2.3"},
           {"imageID", absl::StrCat("registry.example/web@sha256:",
                                    std::string(56, 'a'), i)},
           {"containerID",
            absl::StrCat("containerd://", std::string(56, 'c'), i)}}}}}}};
  // More environment, as real workloads carry, to reach about 2.5 KB.
  auto& env = o["spec"]["containers"][0]["env"];
  for (int k = 0; k < 12; ++k) {
    env.push_back({{"name", absl::StrCat("SETTING_", k)},
                   {"value", absl::StrCat("value-", k, "-", i * 31 + k)}});
  }
  return o.dump();
}

using RapidDoc =
    rapidjson::GenericDocument<rapidjson::UTF8<>, rapidjson::CrtAllocator>;

template <class Build>
void Measure(const char* name, const std::vector<std::string>& texts,
             size_t json_bytes, Build build) {
  malloc_trim(0);
  size_t before = HeapInUse();
  auto t0 = std::chrono::steady_clock::now();
  auto kept = build();
  auto t1 = std::chrono::steady_clock::now();
  size_t after = HeapInUse();
  double secs = std::chrono::duration<double>(t1 - t0).count();
  std::printf("| %-28s | %9.0f | %5.2fx | %8.1f |\n", name,
              static_cast<double>(after - before) / texts.size(),
              static_cast<double>(after - before) / json_bytes,
              json_bytes / secs / 1e6);
  (void)kept;
}

int Run(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 10000;
  std::vector<std::string> texts;
  texts.reserve(n);
  size_t json_bytes = 0;
  for (int i = 0; i < n; ++i) {
    texts.push_back(MakeObject(i));
    json_bytes += texts.back().size();
  }
  std::printf("%d objects, %.0f bytes of JSON each on average\n\n", n,
              static_cast<double>(json_bytes) / n);
  std::printf(
      "| representation               | bytes/obj | ratio  | MB/s in  |\n");
  std::printf(
      "|------------------------------|----------:|-------:|---------:|\n");
  Measure("nlohmann::json DOM", texts, json_bytes, [&] {
    auto v = std::make_unique<std::vector<nlohmann::json>>();
    v->reserve(n);
    for (const auto& t : texts) v->push_back(nlohmann::json::parse(t));
    return v;
  });
  Measure("RapidJSON DOM (CrtAllocator)", texts, json_bytes, [&] {
    auto v = std::make_unique<std::vector<std::unique_ptr<RapidDoc>>>();
    v->reserve(n);
    for (const auto& t : texts) {
      auto d = std::make_unique<RapidDoc>();
      d->Parse(t.c_str(), t.size());
      v->push_back(std::move(d));
    }
    return v;
  });
  Measure("ObjectStore (minified text)", texts, json_bytes, [&] {
    auto store = std::make_unique<herald::cache::ObjectStore>();
    for (int i = 0; i < n; ++i) {
      // What the watcher does per object: parse, take the keys, re-serialize.
      auto j = nlohmann::json::parse(texts[i]);
      herald::cache::CachedObject o;
      const auto& m = j["metadata"];
      o.key = {m["namespace"].get<std::string>(), m["name"].get<std::string>()};
      o.uid = m["uid"].get<std::string>();
      o.resource_version = m["resourceVersion"].get<std::string>();
      o.json = j.dump();
      o.json.shrink_to_fit();
      store->Upsert(std::move(o));
    }
    return store;
  });
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "representation_benchmark: %s\n", e.what());
    return 1;
  }
}
