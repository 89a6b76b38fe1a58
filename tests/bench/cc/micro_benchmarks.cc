// Micro-benchmarks of the sidecar's hot paths, calling the server's own
// libraries: watch stream parsing, the object cache, cause detection
// (essence and diff), delivery encoding and dispatch. Objects are pod-like,
// about 2.5 KB of JSON each, as in server/cache/representation_benchmark.cc.
//
// Run with -c opt; the harness passes --benchmark_format=json:
//   bazel run -c opt //tests/bench/cc:micro_benchmarks
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "herald/v1/handler.pb.h"
#include "nlohmann/json.hpp"
#include "server/cache/object_store.h"
#include "server/engine/dispatcher.h"
#include "server/engine/essence.h"
#include "server/kube/ingest.h"
#include "server/kube/stream_parser.h"
#include "server/kube/watcher.h"
#include "server/runtime/event_loop.h"
#include "server/session/wire.h"

namespace herald::bench {
namespace {

using nlohmann::json;

// A pod-like object; `env` extra environment entries make its size (16 give
// about 2.5 KB). `version` changes the resourceVersion, one environment value
// and one label: a small change of the essence.
json MakeObject(int i, int env = 16, int version = 0) {
  json o = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"name", absl::StrCat("web-", i, "-7d9f8b6c5d-x", i * 7919 % 100000)},
        {"namespace", absl::StrCat("team-", i % 50)},
        {"uid", absl::StrCat("6f1c2d3e-", i, "-4a5b-8c9d-0e1f2a3b4c5d")},
        {"resourceVersion", std::to_string(100000 + i + version * 1000000)},
        {"creationTimestamp", "2026-11-24T13:57:00Z"},
        {"labels",
         {{"app", "web"},
          {"pod-template-hash", absl::StrCat("7d9f8b6c5d", i % 97)},
          {"tier", "frontend"},
          {"revision", std::to_string(version)}}},
        {"annotations",
         {{"kubectl.kubernetes.io/restartedAt",
           absl::StrCat("2026-11-2", i % 10, "T10:00:00Z")},
          {"bench.herald.dev/sent-ns", "1764000000000000000"}}},
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
  auto& envs = o["spec"]["containers"][0]["env"];
  for (int k = 0; k < env; ++k) {
    envs.push_back(
        {{"name", absl::StrCat("SETTING_", k)},
         {"value", absl::StrCat("value-", k, "-", i * 31 + k + version)}});
  }
  return o;
}

constexpr int kObjects = 1000;
constexpr size_t kChunk = 16 << 10;  // A typical read from the socket.

std::vector<std::string> ObjectTexts(int n, int version = 0) {
  std::vector<std::string> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.push_back(MakeObject(i, 16, version).dump());
  return out;
}

// kObjects MODIFIED events, one per line, as a watch response carries them.
const std::string& WatchStream() {
  static const std::string* stream = [] {
    auto* s = new std::string;
    for (const auto& text : ObjectTexts(kObjects)) {
      absl::StrAppend(s, "{\"type\":\"MODIFIED\",\"object\":", text, "}\n");
    }
    return s;
  }();
  return *stream;
}

// One List page of kObjects items.
const std::string& ListPage() {
  static const std::string* page = [] {
    auto* s = new std::string(
        "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":"
        "{\"resourceVersion\":\"123456\",\"continue\":\"abc\"},\"items\":[");
    bool first = true;
    for (const auto& text : ObjectTexts(kObjects)) {
      if (!first) s->push_back(',');
      first = false;
      s->append(text);
    }
    s->append("]}");
    return s;
  }();
  return *page;
}

template <class Feed>
void FeedInChunks(absl::string_view data, Feed&& feed) {
  for (size_t at = 0; at < data.size(); at += kChunk) {
    feed(data.substr(at, kChunk));
  }
}

// Framing only: the watch response split into its event lines.
void BM_WatchLineSplitter(benchmark::State& state) {
  const std::string& stream = WatchStream();
  int64_t lines = 0;
  for (auto _ : state) {
    kube::LineSplitter splitter([&](absl::string_view line) {
      benchmark::DoNotOptimize(line.data());
      ++lines;
      return true;
    });
    FeedInChunks(stream, [&](absl::string_view c) { splitter.Feed(c); });
  }
  state.SetBytesProcessed(state.iterations() * stream.size());
  state.SetItemsProcessed(lines);
}
BENCHMARK(BM_WatchLineSplitter);

// What the watcher does per event line: frame it, parse it, take the object's
// keys and keep its minified text (server/kube/watcher.cc, WatchOnce).
// The watcher's per-line work: the event's type and object found without a
// DOM, the object ingested (managedFields cut, minified, keys extracted).
void BM_WatchEventIngest(benchmark::State& state) {
  const std::string& stream = WatchStream();
  int64_t events = 0;
  for (auto _ : state) {
    std::string type;
    absl::string_view object;
    kube::LineSplitter splitter([&](absl::string_view line) {
      if (!kube::SplitWatchEvent(line, &type, &object) || type != "MODIFIED") {
        state.SkipWithError("bad event");
        return false;
      }
      auto out = kube::IngestObject(object, true);
      if (!out.ok()) {
        state.SkipWithError("bad object");
        return false;
      }
      benchmark::DoNotOptimize(out->json.data());
      ++events;
      return true;
    });
    FeedInChunks(stream, [&](absl::string_view c) { splitter.Feed(c); });
  }
  state.SetBytesProcessed(state.iterations() * stream.size());
  state.SetItemsProcessed(events);
}
BENCHMARK(BM_WatchEventIngest);

// The same through a DOM (nlohmann), as a reference for the fast path.
void BM_WatchEventDecodeWithDom(benchmark::State& state) {
  const std::string& stream = WatchStream();
  int64_t events = 0;
  for (auto _ : state) {
    kube::LineSplitter splitter([&](absl::string_view line) {
      json ev = json::parse(line.begin(), line.end(), nullptr, false);
      auto obj = ev.find("object");
      if (ev.value("type", "") != "MODIFIED" || obj == ev.end()) {
        state.SkipWithError("bad event");
        return false;
      }
      const json& meta = (*obj)["metadata"];
      cache::CachedObject out;
      out.key.ns = meta.value("namespace", "");
      out.key.name = meta.value("name", "");
      out.uid = meta.value("uid", "");
      out.resource_version = meta.value("resourceVersion", "");
      out.json = obj->dump();
      benchmark::DoNotOptimize(out.json.data());
      ++events;
      return true;
    });
    FeedInChunks(stream, [&](absl::string_view c) { splitter.Feed(c); });
  }
  state.SetBytesProcessed(state.iterations() * stream.size());
  state.SetItemsProcessed(events);
}
BENCHMARK(BM_WatchEventDecodeWithDom);

// A List page split into its items as the bytes arrive.
void BM_ListItemSplitter(benchmark::State& state) {
  const std::string& page = ListPage();
  int64_t items = 0;
  for (auto _ : state) {
    kube::ListItemSplitter splitter([&](absl::string_view item) {
      benchmark::DoNotOptimize(item.data());
      ++items;
      return true;
    });
    FeedInChunks(page, [&](absl::string_view c) { splitter.Feed(c); });
    if (!splitter.Finish().ok()) state.SkipWithError("bad list");
  }
  state.SetBytesProcessed(state.iterations() * page.size());
  state.SetItemsProcessed(items);
}
BENCHMARK(BM_ListItemSplitter);

// One listed item to what the cache keeps (kube::IngestObject: parse, keys,
// minified text).
void BM_IngestObject(benchmark::State& state) {
  const std::vector<std::string> texts = ObjectTexts(kObjects);
  size_t i = 0;
  int64_t bytes = 0;
  for (auto _ : state) {
    const std::string& t = texts[i++ % texts.size()];
    auto obj = kube::IngestObject(t, /*strip_managed_fields=*/true);
    benchmark::DoNotOptimize(obj);
    bytes += t.size();
  }
  state.SetBytesProcessed(bytes);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IngestObject);

std::vector<cache::CachedObject> CachedObjects(int n, int version) {
  std::vector<cache::CachedObject> out;
  out.reserve(n);
  for (const auto& text : ObjectTexts(n, version)) {
    auto obj = kube::IngestObject(text, true);
    out.push_back(*std::move(obj));
  }
  return out;
}

// Inserting range(0) new objects into an empty store (the initial listing).
void BM_ObjectStoreInsert(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const std::vector<cache::CachedObject> objects = CachedObjects(n, 0);
  for (auto _ : state) {
    state.PauseTiming();
    auto store = std::make_unique<cache::ObjectStore>();
    std::vector<cache::CachedObject> batch = objects;
    state.ResumeTiming();
    for (auto& o : batch) store->Upsert(std::move(o));
    state.PauseTiming();
    store.reset();
    batch.clear();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_ObjectStoreInsert)->Arg(10000)->Unit(benchmark::kMillisecond);

// Replacing every object of a store of range(0) with a newer version (a
// MODIFIED event each).
void BM_ObjectStoreUpdate(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const std::vector<cache::CachedObject> versions[2] = {CachedObjects(n, 1),
                                                        CachedObjects(n, 2)};
  cache::ObjectStore store;
  for (auto o : CachedObjects(n, 0)) store.Upsert(std::move(o));
  int round = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<cache::CachedObject> batch = versions[round++ % 2];
    state.ResumeTiming();
    for (auto& o : batch) {
      if (store.Upsert(std::move(o)) != cache::ObjectStore::Change::kModified) {
        state.SkipWithError("not a modification");
      }
    }
    state.PauseTiming();
    batch.clear();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_ObjectStoreUpdate)->Arg(10000)->Unit(benchmark::kMillisecond);

// A cached object's text to its essence: parse, then engine::Essence.
void BM_Essence(benchmark::State& state) {
  const std::string text = MakeObject(7).dump();
  for (auto _ : state) {
    json body = json::parse(text);
    json essence = engine::Essence(body, "herald.dev");
    benchmark::DoNotOptimize(essence);
  }
  state.SetBytesProcessed(state.iterations() * text.size());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Essence);

// Two parsed essences that differ in one label and one environment value
// to their diff, as the delivery's diff_json.
void BM_EssenceDiff(benchmark::State& state) {
  const json old_essence = engine::Essence(MakeObject(7, 16, 0), "herald.dev");
  const json new_essence = engine::Essence(MakeObject(7, 16, 1), "herald.dev");
  for (auto _ : state) {
    engine::Diff diff = engine::ComputeDiff(old_essence, new_essence);
    std::string diff_json = engine::DiffToJson(diff).dump();
    benchmark::DoNotOptimize(diff_json.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EssenceDiff);

// Cause detection for one MODIFIED event as the processor does it: parse the
// new body, compute its essence, parse the stored diff-base (the old
// essence's JSON), compare, diff, and render the delivery's old, new and
// diff JSON.
void BM_CauseDetection(benchmark::State& state) {
  const std::string text = MakeObject(7, 16, 1).dump();
  const std::string base =
      engine::Essence(MakeObject(7, 16, 0), "herald.dev").dump();
  for (auto _ : state) {
    json body = json::parse(text);
    json essence = engine::Essence(body, "herald.dev");
    json old = json::parse(base, nullptr, false);
    if (old == essence) state.SkipWithError("no change");
    engine::Diff diff = engine::ComputeDiff(old, essence);
    std::string old_json = old.dump();
    std::string new_json = essence.dump();
    std::string diff_json = engine::DiffToJson(diff).dump();
    benchmark::DoNotOptimize(diff_json.data());
  }
  state.SetBytesProcessed(state.iterations() * text.size());
  state.SetItemsProcessed(state.iterations());
  state.counters["body_bytes"] = text.size();
}
BENCHMARK(BM_CauseDetection);

// Filling a delivery (a ~2 KB body, as P3's objects) and serializing it as
// the stream's ConnectResponse.
void BM_DeliveryEncode(benchmark::State& state) {
  const std::string body = MakeObject(7, 3).dump();
  std::string wire;
  uint64_t id = 0;
  for (auto _ : state) {
    v1::ConnectResponse msg;
    v1::Delivery* d = msg.mutable_delivery();
    d->set_delivery_id(absl::StrCat("d-", ++id));
    d->set_handler_id("bench");
    d->set_cause(v1::CAUSE_EVENT);
    auto* r = d->mutable_resource();
    r->set_group("bench.herald.dev");
    r->set_version("v1");
    r->set_plural("widgets");
    r->set_kind("Widget");
    r->set_namespaced(true);
    auto* o = d->mutable_object();
    o->set_namespace_("team-7");
    o->set_name("web-7-7d9f8b6c5d-x55433");
    o->set_uid("6f1c2d3e-7-4a5b-8c9d-0e1f2a3b4c5d");
    o->set_resource_version("100007");
    d->set_body_json(body);
    d->set_memo_json("{}");
    d->set_event_type("MODIFIED");
    msg.SerializeToString(&wire);
    benchmark::DoNotOptimize(wire.data());
  }
  state.SetBytesProcessed(state.iterations() * wire.size());
  state.SetItemsProcessed(state.iterations());
  state.counters["body_bytes"] = body.size();
  state.counters["message_bytes"] = wire.size();
}
BENCHMARK(BM_DeliveryEncode);

// Translates each message to herald.v1 and keeps it, as a handler
// process's session queues one.
class CopyingSink : public session::WireSink {
 public:
  CopyingSink() : WireSink(1, 16 << 20, "bench") {}
  void Write(v1::ConnectResponse message) override {
    last = std::move(message);
  }
  v1::ConnectResponse last;
};

// One delivery through the dispatcher and back: submit (a delivery sharing
// a 2 KB body with the cache, as the processor makes), written to the
// stream as herald.v1, outcome taken and its credit freed.
void BM_DispatcherRoundTrip(benchmark::State& state) {
  // This thread runs the loop, as the engine's loop thread does: each of
  // the dispatcher's thread checks compares thread ids.
  runtime::EventLoop loop;
  loop.RunUntilIdle();
  engine::Dispatcher dispatcher(&loop);
  CopyingSink sink;
  engine::StreamInfo info;
  info.stream = 1;
  info.credits = 64;
  info.handler_ids = {"bench"};
  dispatcher.AddStream(info, &sink);
  auto object = std::make_shared<cache::CachedObject>();
  object->json = MakeObject(7, 3).dump();
  engine::Delivery tmpl;
  tmpl.handler_id = "bench";
  tmpl.cause = engine::Cause::kEvent;
  tmpl.ns = "team-7";
  tmpl.name = "web-7-7d9f8b6c5d-x55433";
  tmpl.object = object;
  tmpl.event_type = "MODIFIED";
  engine::Outcome outcome;
  outcome.status = engine::OutcomeStatus::kSuccess;
  for (auto _ : state) {
    engine::Delivery d = tmpl;
    d.id = dispatcher.NewDeliveryId();
    dispatcher.Submit(std::move(d),
                      [](const engine::Outcome&, engine::StreamId) {
                        return absl::OkStatus();
                      });
    outcome.delivery_id =
        *session::ParseDeliveryId(sink.last.delivery().delivery_id());
    engine::StreamError code;
    if (!dispatcher.OnOutcome(1, outcome, &code).ok()) {
      state.SkipWithError("outcome refused");
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DispatcherRoundTrip);

// The sidecar's side of an answer: parsing an Outcome with a status patch.
void BM_OutcomeDecode(benchmark::State& state) {
  v1::ConnectRequest req;
  req.mutable_outcome()->set_delivery_id("d-123456");
  req.mutable_outcome()->set_status(v1::OUTCOME_STATUS_SUCCESS);
  req.mutable_outcome()->mutable_changes()->set_status_patch_json(
      "{\"bench\":{\"done\":true}}");
  const std::string wire = req.SerializeAsString();
  v1::ConnectRequest parsed;
  for (auto _ : state) {
    parsed.ParseFromString(wire);
    benchmark::DoNotOptimize(parsed.outcome().delivery_id().data());
  }
  state.SetBytesProcessed(state.iterations() * wire.size());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_OutcomeDecode);

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) {
  // Google Benchmark 1.8 takes --benchmark_min_time=0.5s; Debian's 1.7 takes
  // a bare number of seconds. Accept both.
  std::vector<std::string> args(argv, argv + argc);
  std::vector<char*> ptrs;
  for (auto& a : args) {
    if (absl::StartsWith(a, "--benchmark_min_time=") &&
        absl::EndsWith(a, "s") && !absl::EndsWith(a, "=s")) {
      a.pop_back();
    }
    ptrs.push_back(a.data());
  }
  ptrs.push_back(nullptr);
  int n = argc;
  benchmark::Initialize(&n, ptrs.data());
  if (benchmark::ReportUnrecognizedArguments(n, ptrs.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
