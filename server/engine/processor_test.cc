// The processor's behaviour, one scenario per test, against FakeApi (a tiny
// in-memory API server) and scripted handler streams. Over 600 lines on
// purpose: every scenario shares the fake and its helpers, and reads as one
// specification of Kopf's semantics in Herald.
#include "server/engine/processor.h"

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/test_resources.h"
#include "server/runtime/logging.h"
#include "server/runtime/proto_time.h"
#include "server/session/wire.h"

namespace herald::engine {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

// A tiny in-memory API server: applies patches like the real one (merge
// patch, JSON patch with test), bumps resourceVersion, and feeds the change
// back as a watch event.
class FakeApi : public ObjectWriter {
 public:
  FakeApi(runtime::EventLoop* loop) : loop_(loop) {}
  void Patch(const kube::ResourceInfo& r, const cache::ObjectKey& key,
             kube::PatchType type, std::string patch, bool status,
             WriteDone done) override {
    patches.push_back({type, patch, status});
    json& obj = objects[key.name];
    absl::StatusOr<std::string> result;
    if (status_reply_next_json && type == kube::PatchType::kJson) {
      status_reply_next_json = false;
      result = std::string(R"({"kind":"Status","status":"Success"})");
      loop_->Post([done = std::move(done), result]() mutable { done(result); });
      return;
    }
    if (fail_next_with != 0) {
      result = kube::StatusFromResponse(
          kube::HttpResponse{fail_next_with,
                             R"({"kind":"Status","message":"nope"})", ""},
          "PATCH");
      fail_next_with = 0;
    } else {
      json p = json::parse(patch);
      try {
        json next = obj;
        if (type == kube::PatchType::kJson) {
          next = obj.patch(p);
        } else if (status) {
          next["status"].merge_patch(p["status"]);
        } else {
          json body = p;
          if (r.has_status) body.erase("status");
          next.merge_patch(body);
        }
        next["metadata"]["resourceVersion"] = std::to_string(++rv);
        obj = next;
        result = obj.dump();
        Emit(r, "MODIFIED", obj);
      } catch (const json::exception& e) {
        result = kube::StatusFromResponse(
            kube::HttpResponse{
                422, json{{"kind", "Status"}, {"message", e.what()}}.dump(),
                ""},
            "PATCH");
      }
    }
    loop_->Post([done = std::move(done), result]() mutable { done(result); });
  }
  void PostEvent(kube::InvolvedObject o, kube::EventKind kind,
                 std::string reason, std::string message) override {
    events.push_back(absl::StrCat(o.name, ":", reason, ":", message));
  }
  void Emit(const kube::ResourceInfo& r, const std::string& type,
            const json& obj) {
    if (!processor) return;
    if (hold_events) {
      held.push_back({r, type, obj});
      return;
    }
    cache::CachedObject c;
    c.key = {obj["metadata"].value("namespace", ""), obj["metadata"]["name"]};
    c.uid = obj["metadata"].value("uid", "");
    c.resource_version = obj["metadata"].value("resourceVersion", "");
    c.json = obj.dump();
    kube::WatchEvent e{type == "ADDED"     ? kube::WatchEvent::Type::kAdded
                       : type == "DELETED" ? kube::WatchEvent::Type::kDeleted
                                           : kube::WatchEvent::Type::kModified,
                       std::make_shared<const cache::CachedObject>(c), false};
    processor->OnEvent(r, e);
  }

  // A new object: its resourceVersion and uid, then its ADDED event.
  void Add(json obj) {
    const std::string name = obj["metadata"]["name"];
    obj["metadata"]["resourceVersion"] = std::to_string(++rv);
    obj["metadata"]["uid"] = "uid-" + name;
    objects[name] = obj;
    Emit(testing::Kex(), "ADDED", obj);
  }
  // Another writer's change: a new resourceVersion, then its MODIFIED event.
  void Modify(json obj) {
    obj["metadata"]["resourceVersion"] = std::to_string(++rv);
    objects[obj["metadata"]["name"].get<std::string>()] = obj;
    Emit(testing::Kex(), "MODIFIED", obj);
  }

  // Sends the held watch events, in order.
  void ReleaseEvents() {
    hold_events = false;
    std::vector<Held> events;
    events.swap(held);
    for (const auto& e : events) Emit(e.resource, e.type, e.object);
  }

  struct Call {
    kube::PatchType type;
    std::string body;
    bool status;
  };
  struct Held {
    kube::ResourceInfo resource;
    std::string type;
    json object;
  };
  runtime::EventLoop* loop_;
  Processor* processor = nullptr;
  std::map<std::string, json> objects;
  std::vector<Call> patches;
  std::vector<std::string> events;
  int rv = 100;
  int fail_next_with = 0;
  // Answer the next JSON patch with a Status instead of the object, as the
  // API server may when the patch removes a terminating object's last
  // finalizer.
  bool status_reply_next_json = false;
  // Watch events wait in `held` until ReleaseEvents: the API server's
  // answers to patches then arrive before the events of the changes, as
  // they often do.
  bool hold_events = false;
  std::vector<Held> held;
};

// A handler process's stream as the process sees it: the engine's messages
// in herald.v1, through the session layer's translation.
class Stream : public session::WireSink {
 public:
  explicit Stream(StreamId id = 1) : WireSink(id, 16 << 20, "test") {}
  void Write(v1::ConnectResponse m) override {
    if (m.has_delivery()) deliveries.push_back(m.delivery());
    if (m.has_protocol_error()) errors.push_back(m.protocol_error());
    if (m.has_stop()) stops.push_back(m.stop());
  }
  std::vector<v1::Stop> stops;
  std::vector<v1::Delivery> deliveries;
  std::vector<v1::ProtocolError> errors;
};

using ::herald::engine::testing::Kex;
using ::herald::engine::testing::Spec;

class ProcessorTest : public ::testing::Test {
 protected:
  ProcessorTest()
      : loop_(&clock_),
        api_(&loop_),
        processor_(&loop_, &registry_, &dispatcher_, &api_, Options()) {
    api_.processor = &processor_;
  }
  static EngineOptions Options() {
    EngineOptions o;
    o.prefix = "herald.dev";
    return o;
  }
  void AddHandler(const std::string& id, Cause cause,
                  std::function<void(HandlerSpec&)> edit = nullptr) {
    HandlerSpec s = Spec(id, cause);
    if (edit) edit(s);
    ASSERT_TRUE(registry_.Add(s, Kex()).ok());
    handler_ids_.push_back(id);
  }
  // A process serving every handler added so far, on `stream_` unless
  // another sink is given.
  void Connect(uint32_t credits = 10, Stream* sink = nullptr,
               StreamId stream = 1) {
    StreamInfo info;
    info.stream = stream;
    info.credits = credits;
    info.handler_ids = handler_ids_;
    dispatcher_.AddStream(info, sink != nullptr ? sink : &stream_);
  }
  void Create(json obj) {
    api_.Add(std::move(obj));
    loop_.RunUntilIdle();
  }
  json Obj(const std::string& name) { return api_.objects[name]; }
  // Answers the last delivery with a patch the API server rejects.
  void AnswerWithARejectedPatch() {
    api_.fail_next_with = 422;
    Answer(v1::OUTCOME_STATUS_SUCCESS, [](v1::Outcome& o) {
      o.mutable_changes()->set_patch_json(R"({"spec":{"field":42}})");
    });
  }
  // Answers a delivery from a stream; what the dispatcher said is also in
  // last_answer_ and last_code_.
  absl::Status Reply(StreamId stream, const std::string& delivery_id,
                     v1::OutcomeStatus status,
                     const std::function<void(v1::Outcome&)>& edit = nullptr) {
    v1::Outcome o;
    o.set_delivery_id(delivery_id);
    o.set_status(status);
    if (edit) edit(o);
    StreamError code = StreamError::kNotRegistered;
    last_answer_ = dispatcher_.OnOutcome(
        stream,
        session::OutcomeFromWire(
            o, session::ParseDeliveryId(delivery_id).value_or(0)),
        &code);
    last_code_ = last_answer_.ok() ? v1::PROTOCOL_ERROR_CODE_UNSPECIFIED
                                   : session::WireCode(code);
    loop_.RunUntilIdle();
    return last_answer_;
  }
  // Interim changes from a running delivery, as the session hands them on:
  // InvalidArgument when they do not parse.
  absl::Status Interim(const std::string& delivery_id,
                       const v1::ObjectChanges& changes, StreamId stream = 1) {
    absl::StatusOr<Changes> parsed = session::ChangesFromWire(changes);
    if (!parsed.ok()) return parsed.status();
    return processor_.OnInterimChanges(
        session::ParseDeliveryId(delivery_id).value_or(0), *parsed, stream);
  }
  // Answers the last delivery.
  void Answer(v1::OutcomeStatus status,
              const std::function<void(v1::Outcome&)>& edit = nullptr) {
    ASSERT_FALSE(stream_.deliveries.empty());
    // What the dispatcher said stays in last_answer_ for the test to check.
    Reply(1, stream_.deliveries.back().delivery_id(), status, edit)
        .IgnoreError();
  }
  std::vector<std::string> Delivered() {
    std::vector<std::string> out;
    for (const auto& d : stream_.deliveries) {
      out.push_back(
          absl::StrCat(d.handler_id(), "/", v1::Cause_Name(d.cause())));
    }
    return out;
  }
  json Ann(const std::string& name, const std::string& key) {
    const json obj = Obj(name);
    const json& a = Resolve(obj, {"metadata", "annotations"});
    return a.is_object() && a.contains(key) ? a[key] : json(nullptr);
  }

  runtime::FakeClock clock_;
  runtime::EventLoop loop_;
  Registry registry_;
  Dispatcher dispatcher_{&loop_};
  FakeApi api_;
  Processor processor_;
  Stream stream_;
  std::vector<std::string> handler_ids_;
  absl::Status last_answer_;
  v1::ProtocolErrorCode last_code_ = v1::PROTOCOL_ERROR_CODE_UNSPECIFIED;
};

void MarkDeleted(FakeApi& api, const std::string& name);

json Example(const std::string& name) {
  return json{{"apiVersion", "kopf.dev/v1"},
              {"kind", "KopfExample"},
              {"metadata", {{"name", name}, {"namespace", "ns"}}},
              {"spec", {{"field", "value"}}}};
}

// An Example whose diff-base annotation says a handler saw it as
// `diff_base`.
json HandledAs(const std::string& name, const std::string& diff_base) {
  json obj = Example(name);
  obj["metadata"]["annotations"]["herald.dev/last-handled-configuration"] =
      diff_base;
  return obj;
}

TEST_F(ProcessorTest, CreateRunsOnceStoresResultAndDiffBase) {
  AddHandler("create_fn", Cause::kCreate);
  Connect();
  Create(Example("a"));
  ASSERT_THAT(Delivered(), ::testing::ElementsAre("create_fn/CAUSE_CREATE"));
  EXPECT_EQ(stream_.deliveries[0].retry(), 0u);
  EXPECT_EQ(json::parse(stream_.deliveries[0].body_json())["spec"]["field"],
            "value");
  Answer(v1::OUTCOME_STATUS_SUCCESS, [](v1::Outcome& o) {
    o.set_result_json(R"({"message":"hello"})");
    o.mutable_changes()->set_patch_json(
        R"({"metadata":{"labels":{"done":"yes"}}})");
    auto* e = o.mutable_changes()->add_events();
    e->set_reason("Created");
    e->set_message("made it");
  });
  EXPECT_EQ(Obj("a")["status"]["create_fn"]["message"], "hello");
  EXPECT_EQ(Obj("a")["metadata"]["labels"]["done"], "yes");
  // The first write carried the diff-base of what the handler saw.
  auto first = json::parse(api_.patches[0].body);
  EXPECT_EQ(
      first["metadata"]["annotations"]["herald.dev/last-handled-configuration"],
      R"({"spec":{"field":"value"}})"
      "\n");
  EXPECT_EQ(Ann("a", "herald.dev/kopf-managed"), "yes");
  EXPECT_TRUE(Ann("a", "herald.dev/create_fn").is_null());
  EXPECT_THAT(api_.events, ::testing::ElementsAre("a:Created:made it"));
  // The label added by the handler changes the essence: an update, for
  // which no handler is registered; only the diff-base moves.
  EXPECT_EQ(Delivered().size(), 1u);
  EXPECT_EQ(Ann("a", "herald.dev/last-handled-configuration"),
            R"({"metadata":{"labels":{"done":"yes"}},"spec":{"field":"value"}})"
            "\n");
  // One merge patch (progress, diff-base, handler patch), one status patch,
  // then the diff-base after the label change; nothing else.
  EXPECT_EQ(api_.patches.size(), 3u);
}

TEST_F(ProcessorTest, NoMatchingHandlerMeansNoWritesAtAll) {
  AddHandler("create_fn", Cause::kCreate, [](HandlerSpec& s) {
    s.labels["app"].match = MetaMatch::kPresent;
  });
  Connect();
  Create(Example("a"));
  EXPECT_TRUE(stream_.deliveries.empty());
  EXPECT_TRUE(api_.patches.empty());
}

TEST_F(ProcessorTest,
       TemporaryErrorsAreRetriedAfterTheirDelayAndSurviveInAnnotations) {
  AddHandler("create_fn", Cause::kCreate);
  Connect();
  Create(Example("a"));
  Answer(v1::OUTCOME_STATUS_TEMPORARY_ERROR, [](v1::Outcome& o) {
    o.set_message("not yet");
    o.mutable_delay()->set_seconds(30);
  });
  auto rec =
      DecodeProgress(Ann("a", "herald.dev/create_fn").get<std::string>());
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->retries, 1);
  EXPECT_EQ(*rec->message, "not yet");
  EXPECT_EQ(*rec->delayed, clock_.Now() + absl::Seconds(30));
  EXPECT_EQ(rec->purpose, "create");
  EXPECT_EQ(stream_.deliveries.size(), 1u);  // Our own write woke nothing.
  clock_.Advance(absl::Seconds(29));
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 1u);
  clock_.Advance(absl::Seconds(1));
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  EXPECT_EQ(stream_.deliveries[1].retry(), 1u);
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  EXPECT_TRUE(Ann("a", "herald.dev/create_fn").is_null());
  EXPECT_FALSE(Ann("a", "herald.dev/last-handled-configuration").is_null());
}

TEST_F(ProcessorTest, RetriesLimitFailsPermanentlyBeforeTheExtraAttempt) {
  AddHandler("create_fn", Cause::kCreate, [](HandlerSpec& s) {
    s.retries = 2;
    s.backoff = absl::Seconds(1);
  });
  Connect();
  Create(Example("a"));
  Answer(v1::OUTCOME_STATUS_UNEXPECTED_ERROR);
  clock_.Advance(absl::Seconds(1));
  loop_.RunUntilIdle();
  Answer(v1::OUTCOME_STATUS_UNEXPECTED_ERROR);
  clock_.Advance(absl::Seconds(1));
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 2u);
  // Done (failed): progress purged, diff-base stored.
  EXPECT_TRUE(Ann("a", "herald.dev/create_fn").is_null());
  EXPECT_FALSE(Ann("a", "herald.dev/last-handled-configuration").is_null());
  EXPECT_EQ(processor_.stats().at("create_fn").permanent_failures, 1u);
}

// The JSON log lines written while `body` runs, parsed.
template <typename F>
std::vector<json> JsonLogLines(F body) {
  const runtime::LogFormat before = runtime::GetLogFormat();
  runtime::SetLogFormat(runtime::LogFormat::kJson);
  ::testing::internal::CaptureStderr();
  body();
  const std::string out = ::testing::internal::GetCapturedStderr();
  runtime::SetLogFormat(before);
  std::vector<json> lines;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    lines.push_back(json::parse(line));
  }
  return lines;
}

// The lines about `handler_id`, as (level, message).
std::vector<std::pair<std::string, std::string>> LinesOf(
    const std::vector<json>& lines, const std::string& handler_id) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const json& line : lines) {
    if (line.value("id", "") != handler_id) continue;
    EXPECT_EQ(line["namespace"], "ns") << line;
    EXPECT_EQ(line["name"], "a") << line;
    EXPECT_EQ(line["resource"], "kopfexamples.v1.kopf.dev") << line;
    EXPECT_EQ(line["logger"], "engine") << line;
    out.emplace_back(line["level"], line["message"]);
  }
  return out;
}

TEST_F(ProcessorTest, EachAnswerIsLoggedAboutItsObjectAndHandler) {
  AddHandler("create_fn", Cause::kCreate,
             [](HandlerSpec& s) { s.backoff = absl::Seconds(5); });
  AddHandler("never_fn", Cause::kCreate);
  AddHandler("limited_fn", Cause::kCreate, [](HandlerSpec& s) {
    s.retries = 1;
    s.backoff = absl::Seconds(1);
  });
  Connect();
  const std::vector<json> lines = JsonLogLines([&] {
    Create(Example("a"));
    Answer(v1::OUTCOME_STATUS_TEMPORARY_ERROR, [](v1::Outcome& o) {
      o.set_message("not \"yet\"\nreally");
      o.mutable_delay()->set_seconds(3);
    });
    Answer(v1::OUTCOME_STATUS_PERMANENT_ERROR,
           [](v1::Outcome& o) { o.set_message("never"); });
    Answer(v1::OUTCOME_STATUS_UNEXPECTED_ERROR,
           [](v1::Outcome& o) { o.set_message("boom"); });
    clock_.Advance(absl::Seconds(3));
    loop_.RunUntilIdle();
    Answer(v1::OUTCOME_STATUS_SUCCESS);
  });
  using Line = std::pair<std::string, std::string>;
  EXPECT_THAT(LinesOf(lines, "create_fn"),
              ::testing::ElementsAre(
                  Line{"warning",
                       "handler create_fn failed temporarily: not \"yet\"\n"
                       "really; retrying in 3s"},
                  Line{"info", "handler create_fn succeeded"}));
  EXPECT_THAT(LinesOf(lines, "never_fn"),
              ::testing::ElementsAre(
                  Line{"error", "handler never_fn failed permanently: never"}));
  EXPECT_THAT(
      LinesOf(lines, "limited_fn"),
      ::testing::ElementsAre(
          Line{"warning",
               "handler limited_fn failed temporarily: boom; retrying in 1s"},
          Line{"error",
               "handler limited_fn failed permanently: exceeded the retries "
               "limit (1)"}));
}

TEST_F(ProcessorTest, StoredSuccessIsNotRunAgain) {
  AddHandler("a_fn", Cause::kCreate);
  AddHandler("b_fn", Cause::kCreate);
  Connect();
  json obj = Example("x");
  ProgressRecord done;
  done.started = clock_.Now();
  done.stopped = clock_.Now();
  done.retries = 1;
  done.success = true;
  done.purpose = "create";
  obj["metadata"]["annotations"]["herald.dev/a_fn"] = EncodeProgress(done);
  Create(obj);
  EXPECT_THAT(Delivered(), ::testing::ElementsAre("b_fn/CAUSE_CREATE"));
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  EXPECT_TRUE(Ann("x", "herald.dev/a_fn").is_null());
  EXPECT_TRUE(Ann("x", "herald.dev/b_fn").is_null());
}

TEST_F(ProcessorTest, UpdateGetsOldNewAndDiffFieldHandlersTheirField) {
  AddHandler("update_fn", Cause::kUpdate);
  AddHandler("field_fn", Cause::kField,
             [](HandlerSpec& s) { s.field = "spec.field"; });
  AddHandler("other_field_fn", Cause::kField,
             [](HandlerSpec& s) { s.field = "spec.other"; });
  Connect();
  Create(HandledAs("u", R"({"spec":{"field":"old"}})"));
  ASSERT_THAT(Delivered(), ::testing::ElementsAre("update_fn/CAUSE_UPDATE"));
  const auto& d = stream_.deliveries[0];
  EXPECT_EQ(d.diff_json(), R"([["change",["spec","field"],"old","value"]])");
  EXPECT_EQ(d.old_json(), R"({"spec":{"field":"old"}})");
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  ASSERT_THAT(Delivered(), ::testing::ElementsAre("update_fn/CAUSE_UPDATE",
                                                  "field_fn/CAUSE_FIELD"));
  EXPECT_EQ(stream_.deliveries[1].old_json(), R"("old")");
  EXPECT_EQ(stream_.deliveries[1].new_json(), R"("value")");
  EXPECT_EQ(stream_.deliveries[1].diff_json(),
            R"([["change",[],"old","value"]])");
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  EXPECT_EQ(stream_.deliveries.size(), 2u);
}

TEST_F(ProcessorTest, CreateResumeAndDeleteHandlersWithAFieldMatchItsValue) {
  auto equals = [](const std::string& value) {
    return [value](HandlerSpec& s) {
      s.field = "spec.size";
      s.value_filter.match = ValueMatch::kEquals;
      s.value_filter.value_json = value;
    };
  };
  AddHandler("create_fn/spec.size", Cause::kCreate, equals("3"));
  AddHandler("resume_fn/spec.size", Cause::kResume, equals("5"));
  AddHandler("delete_fn/spec.size", Cause::kDelete, equals("1"));
  Connect();
  json small = Example("small");
  small["spec"]["size"] = 1;
  Create(small);
  EXPECT_TRUE(stream_.deliveries.empty());  // Not 3: create_fn is not for it.
  json big = Example("big");
  big["spec"]["size"] = 3;
  Create(big);
  ASSERT_THAT(Delivered(),
              ::testing::ElementsAre("create_fn/spec.size/CAUSE_CREATE"));
  // Old, new and diff narrowed to the field, as for field handlers.
  EXPECT_EQ(stream_.deliveries[0].old_json(), "null");
  EXPECT_EQ(stream_.deliveries[0].new_json(), "3");
  EXPECT_EQ(stream_.deliveries[0].diff_json(), R"([["add",[],null,3]])");
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  // Seen before, unchanged: a resume, for the object whose size is 5.
  json old = Example("old");
  old["spec"]["size"] = 5;
  old["metadata"]["annotations"]["herald.dev/last-handled-configuration"] =
      R"({"spec":{"field":"value","size":5}})";
  old["metadata"]["finalizers"] = json::array({"herald.dev/finalizer"});
  Create(old);
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  EXPECT_EQ(stream_.deliveries[1].handler_id(), "resume_fn/spec.size");
  EXPECT_EQ(stream_.deliveries[1].old_json(), "5");
  EXPECT_EQ(stream_.deliveries[1].new_json(), "5");
  EXPECT_EQ(stream_.deliveries[1].diff_json(), "[]");
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  // Deleted: only the object whose size is 1 gets the delete handler; the
  // other one's finalizer simply goes.
  MarkDeleted(api_, "big");
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 2u);
  EXPECT_EQ(Obj("big")["metadata"]["finalizers"], json::array());
  MarkDeleted(api_, "small");
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 3u);
  EXPECT_EQ(stream_.deliveries[2].handler_id(), "delete_fn/spec.size");
  EXPECT_EQ(stream_.deliveries[2].cause(), v1::CAUSE_DELETE);
  EXPECT_EQ(stream_.deliveries[2].old_json(), "1");
  EXPECT_EQ(stream_.deliveries[2].new_json(), "1");
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  EXPECT_EQ(Obj("small")["metadata"]["finalizers"], json::array());
}

TEST_F(ProcessorTest, ResumeRunsAfterTheFinalizerIsAddedOnFirstSight) {
  // Handled before (a diff-base), without the finalizer a delete handler
  // needs: the first step adds it; the resume handlers still run after it,
  // once, as in Kopf (the object is not fully handled until a cycle ends).
  AddHandler("resume_fn", Cause::kResume);
  AddHandler("delete_fn", Cause::kDelete);
  Connect();
  Create(HandledAs("r", R"({"spec":{"field":"value"}})"));
  EXPECT_EQ(Obj("r")["metadata"]["finalizers"],
            json::array({"herald.dev/finalizer"}));
  ASSERT_THAT(Delivered(), ::testing::ElementsAre("resume_fn/CAUSE_RESUME"));
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  // Fully handled: later unchanged events resume nothing.
  api_.Modify(Obj("r"));
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 1u);
}

TEST_F(ProcessorTest, ResumeHandlersJoinTheCycleUntilItEnds) {
  // A resume handler that fails temporarily is retried after its delay
  // with the resume cause still in force.
  AddHandler("resume_fn", Cause::kResume);
  Connect();
  Create(HandledAs("t", R"({"spec":{"field":"value"}})"));
  ASSERT_THAT(Delivered(), ::testing::ElementsAre("resume_fn/CAUSE_RESUME"));
  Answer(v1::OUTCOME_STATUS_TEMPORARY_ERROR,
         [](v1::Outcome& o) { o.mutable_delay()->set_seconds(5); });
  clock_.Advance(absl::Seconds(5));
  loop_.RunUntilIdle();
  ASSERT_THAT(Delivered(), ::testing::ElementsAre("resume_fn/CAUSE_RESUME",
                                                  "resume_fn/CAUSE_RESUME"));
  EXPECT_EQ(stream_.deliveries[1].retry(), 1u);
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  api_.Modify(Obj("t"));
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 2u);
}

TEST_F(ProcessorTest, FinalizerHeldForDeleteHandlersAndReleasedAfterThem) {
  AddHandler("delete_fn", Cause::kDelete);
  Connect();
  Create(Example("d"));
  EXPECT_EQ(Obj("d")["metadata"]["finalizers"],
            json::array({"herald.dev/finalizer"}));
  EXPECT_EQ(api_.patches[0].type, kube::PatchType::kJson);
  EXPECT_THAT(api_.patches[0].body,
              HasSubstr(R"("op":"test","path":"/metadata/resourceVersion")"));
  EXPECT_TRUE(stream_.deliveries.empty());
  // kubectl delete: the API server sets deletionTimestamp.
  MarkDeleted(api_, "d");
  loop_.RunUntilIdle();
  ASSERT_THAT(Delivered(), ::testing::ElementsAre("delete_fn/CAUSE_DELETE"));
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  EXPECT_EQ(Obj("d")["metadata"]["finalizers"], json::array());
  EXPECT_EQ(stream_.deliveries.size(), 1u);
}

TEST_F(ProcessorTest, DeleteHandlersRunOnceEvenWhenTheReleaseAnswerIsNoObject) {
  AddHandler("delete_fn", Cause::kDelete);
  Connect();
  Create(Example("g"));
  api_.status_reply_next_json = true;
  MarkDeleted(api_, "g");
  loop_.RunUntilIdle();
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  // The release was answered with a Status: no second cycle, no re-run.
  EXPECT_EQ(stream_.deliveries.size(), 1u);
  // Another event for the still-present object retries only the release.
  json again = Obj("g");
  api_.Modify(again);
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 1u);
  EXPECT_EQ(Obj("g")["metadata"]["finalizers"], json::array());
}

TEST_F(ProcessorTest, FinalizerRemovedWhenNoHandlerNeedsIt) {
  AddHandler("create_fn", Cause::kCreate);
  Connect();
  json obj = Example("f");
  obj["metadata"]["finalizers"] =
      json::array({"other/keep", "herald.dev/finalizer"});
  Create(obj);
  EXPECT_EQ(Obj("f")["metadata"]["finalizers"], json::array({"other/keep"}));
}

TEST_F(ProcessorTest,
       MalformedOutcomeIsAnErrorTheObjectIsUntouchedAndProgressRecordsIt) {
  AddHandler("create_fn", Cause::kCreate);
  Connect();
  Create(Example("m"));
  Answer(v1::OUTCOME_STATUS_SUCCESS, [](v1::Outcome& o) {
    o.mutable_changes()->set_patch_json("{not json");
  });
  EXPECT_FALSE(last_answer_.ok());
  EXPECT_EQ(last_code_, v1::PROTOCOL_ERROR_CODE_MALFORMED_JSON);
  EXPECT_THAT(last_answer_.message(),
              HasSubstr("patch_json is not a JSON object"));
  auto rec =
      DecodeProgress(Ann("m", "herald.dev/create_fn").get<std::string>());
  ASSERT_TRUE(rec.ok());
  EXPECT_FALSE(rec->success);
  EXPECT_THAT(*rec->message, HasSubstr("malformed outcome"));
  EXPECT_FALSE(Obj("m")["metadata"].contains("labels"));
}

TEST_F(ProcessorTest, RejectedHandlerPatchIsReportedAndRecorded) {
  AddHandler("create_fn", Cause::kCreate);
  Connect();
  Create(Example("r"));
  AnswerWithARejectedPatch();
  ASSERT_EQ(stream_.errors.size(), 1u);
  EXPECT_EQ(stream_.errors[0].code(), v1::PROTOCOL_ERROR_CODE_PATCH_REJECTED);
  auto rec =
      DecodeProgress(Ann("r", "herald.dev/create_fn").get<std::string>());
  ASSERT_TRUE(rec.ok());
  EXPECT_THAT(*rec->message, HasSubstr("patch rejected"));
  EXPECT_EQ(Obj("r")["spec"]["field"], "value");
}

TEST_F(ProcessorTest, EventsArrivingMidCycleMergeIntoOneNextCycle) {
  AddHandler("update_fn", Cause::kUpdate);
  Connect();
  Create(HandledAs("e", R"({"spec":{"field":"v0"}})"));
  ASSERT_EQ(stream_.deliveries.size(), 1u);
  // Two changes while the handler works.
  for (const char* v : {"v2", "v3"}) {
    json o = Obj("e");
    o["spec"]["field"] = v;
    api_.Modify(o);
  }
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 1u);  // Never two at once.
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  EXPECT_EQ(json::parse(stream_.deliveries[1].new_json())["spec"]["field"],
            "v3");
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  EXPECT_EQ(stream_.deliveries.size(), 2u);
}

TEST_F(ProcessorTest, LargeDiffBasesKeepADigestAndStillDetectChanges) {
  registry_ = Registry();
  EngineOptions o;
  o.max_diffbase_bytes = 200;
  Processor small(&loop_, &registry_, &dispatcher_, &api_, o);
  api_.processor = &small;
  AddHandler("create_fn", Cause::kCreate);
  AddHandler("update_fn", Cause::kUpdate);
  Connect();
  json obj = Example("big");
  obj["spec"]["blob"] = std::string(500, 'x');
  Create(obj);
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  EXPECT_TRUE(Ann("big", "herald.dev/last-handled-configuration").is_null());
  EXPECT_THAT(Ann("big", "herald.dev/last-handled-digest").get<std::string>(),
              ::testing::StartsWith("sha256:"));
  // The format already written on objects: lowercase hex of SHA-256.
  EXPECT_THAT(Ann("big", "herald.dev/last-handled-digest").get<std::string>(),
              ::testing::MatchesRegex("sha256:[0-9a-f]{64}"));
  // Our own writes change nothing: no second delivery.
  EXPECT_EQ(stream_.deliveries.size(), 1u);
  json changed = Obj("big");
  changed["spec"]["field"] = "other";
  api_.Modify(changed);
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  EXPECT_EQ(stream_.deliveries[1].handler_id(), "update_fn");
  // The old essence was in memory, so the diff is exact.
  EXPECT_EQ(stream_.deliveries[1].diff_json(),
            R"([["change",["spec","field"],"value","other"]])");
}

TEST_F(ProcessorTest, ResumeHandlersRunOnFirstSightOfHandledObjects) {
  AddHandler("resume_fn", Cause::kResume);
  Connect();
  Create(HandledAs("old", R"({"spec":{"field":"value"}})"));
  ASSERT_THAT(Delivered(), ::testing::ElementsAre("resume_fn/CAUSE_RESUME"));
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  // Seen now: later events with no change resume nothing.
  json again = Obj("old");
  api_.Modify(again);
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 1u);
}

// A standby that becomes the leader hands the processor its warm cache:
// each object as a first listing brings it, where its annotations say.
TEST_F(ProcessorTest, AdoptTakesACachedObjectsAsAFirstListing) {
  AddHandler("create_fn", Cause::kCreate);
  AddHandler("resume_fn", Cause::kResume);
  Connect();
  // In the API server (for the writes), and in a cache the processor has
  // not seen: no event reaches it.
  api_.processor = nullptr;
  api_.Add(HandledAs("old", R"({"spec":{"field":"value"}})"));
  api_.Add(Example("new"));
  api_.processor = &processor_;
  loop_.RunUntilIdle();
  EXPECT_TRUE(stream_.deliveries.empty());
  std::vector<std::shared_ptr<const cache::CachedObject>> cached;
  for (const char* name : {"new", "old"}) {
    const json& obj = api_.objects[name];
    cache::CachedObject c;
    c.key = {"ns", name};
    c.uid = obj["metadata"]["uid"];
    c.resource_version = obj["metadata"]["resourceVersion"];
    c.json = obj.dump();
    cached.push_back(std::make_shared<const cache::CachedObject>(c));
  }
  EXPECT_FALSE(processor_.Listed(Kex().FullName()));
  processor_.Adopt(Kex(), cached, /*listed=*/true);
  EXPECT_TRUE(processor_.Listed(Kex().FullName()));
  loop_.RunUntilIdle();
  // The handled object is resumed, the new one created: as at a start.
  EXPECT_THAT(Delivered(),
              ::testing::UnorderedElementsAre("create_fn/CAUSE_CREATE",
                                              "resume_fn/CAUSE_RESUME"));
  EXPECT_EQ(processor_.objects(), 2u);
}

TEST_F(ProcessorTest, RawEventHandlersHearEveryEventWithoutProgress) {
  AddHandler("event_fn", Cause::kEvent);
  Connect();
  Create(Example("ev"));
  ASSERT_EQ(stream_.deliveries.size(), 1u);
  EXPECT_EQ(stream_.deliveries[0].event_type(), "ADDED");
  Answer(v1::OUTCOME_STATUS_TEMPORARY_ERROR);  // Errors are not retried.
  api_.Emit(Kex(), "DELETED", Obj("ev"));
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  EXPECT_EQ(stream_.deliveries[1].event_type(), "DELETED");
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  EXPECT_EQ(processor_.objects(), 0u);
  for (const auto& p : api_.patches) {
    EXPECT_THAT(p.body, ::testing::Not(HasSubstr("event_fn")));
  }
}

TEST_F(ProcessorTest, RawEventHandlersChangesReachTheObject) {
  AddHandler("event_fn", Cause::kEvent);
  AddHandler("other_event_fn", Cause::kEvent);
  Connect();
  Create(Example("p"));
  ASSERT_THAT(Delivered(), ::testing::ElementsAre("event_fn/CAUSE_EVENT"));
  Answer(v1::OUTCOME_STATUS_SUCCESS, [](v1::Outcome& o) {
    o.mutable_changes()->set_patch_json(
        R"({"metadata":{"labels":{"seen":"yes"}}})");
    o.mutable_changes()->set_status_patch_json(R"({"seen":{"by":"event_fn"}})");
    auto* e = o.mutable_changes()->add_events();
    e->set_reason("Seen");
    e->set_message("an event");
  });
  // The next handler of the same event, then one write for both.
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  EXPECT_EQ(stream_.deliveries[1].handler_id(), "other_event_fn");
  EXPECT_TRUE(api_.patches.empty());
  Answer(v1::OUTCOME_STATUS_SUCCESS, [](v1::Outcome& o) {
    o.mutable_changes()->set_patch_json(R"({"spec":{"extra":1}})");
  });
  EXPECT_EQ(Obj("p")["metadata"]["labels"]["seen"], "yes");
  EXPECT_EQ(Obj("p")["spec"]["extra"], 1);
  EXPECT_EQ(Obj("p")["status"]["seen"]["by"], "event_fn");
  EXPECT_THAT(api_.events, ::testing::ElementsAre("p:Seen:an event"));
  ASSERT_EQ(api_.patches.size(), 2u);  // The object, then its status.
  EXPECT_TRUE(stream_.errors.empty());
  // The handlers hear the change their own writes made, as in Kopf; no
  // progress of theirs is ever stored.
  ASSERT_GE(stream_.deliveries.size(), 3u);
  EXPECT_EQ(stream_.deliveries[2].event_type(), "MODIFIED");
  for (const auto& p : api_.patches) {
    EXPECT_THAT(p.body, ::testing::Not(HasSubstr("herald.dev/event_fn")));
  }
}

TEST_F(ProcessorTest, ARejectedRawEventPatchIsReportedAndTheObjectMovesOn) {
  AddHandler("event_fn", Cause::kEvent);
  Connect();
  Create(Example("r"));
  AnswerWithARejectedPatch();
  ASSERT_EQ(stream_.errors.size(), 1u);
  EXPECT_EQ(stream_.errors[0].code(), v1::PROTOCOL_ERROR_CODE_PATCH_REJECTED);
  EXPECT_THAT(stream_.errors[0].message(), HasSubstr("event_fn"));
  EXPECT_EQ(Obj("r")["spec"]["field"], "value");
  EXPECT_TRUE(Ann("r", "herald.dev/event_fn").is_null());
  // Not retried, and the object's next event is heard.
  json o = Obj("r");
  o["spec"]["field"] = "next";
  api_.Modify(o);
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  EXPECT_EQ(stream_.deliveries[1].event_type(), "MODIFIED");
}

TEST_F(ProcessorTest, APatchForADeletedObjectIsAnsweredWithAProtocolError) {
  AddHandler("event_fn", Cause::kEvent);
  Connect();
  Create(Example("g"));
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  api_.Emit(Kex(), "DELETED", Obj("g"));
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  EXPECT_EQ(stream_.deliveries[1].event_type(), "DELETED");
  Answer(v1::OUTCOME_STATUS_SUCCESS, [](v1::Outcome& o) {
    o.mutable_changes()->set_patch_json(R"({"spec":{"late":true}})");
    auto* e = o.mutable_changes()->add_events();
    e->set_reason("Gone");
    e->set_message("bye");
  });
  // Nothing to patch: the handler's process hears why; the Event still
  // goes out, and the object's state is dropped.
  EXPECT_TRUE(api_.patches.empty());
  ASSERT_EQ(stream_.errors.size(), 1u);
  EXPECT_EQ(stream_.errors[0].code(), v1::PROTOCOL_ERROR_CODE_PATCH_REJECTED);
  EXPECT_THAT(stream_.errors[0].message(), HasSubstr("gone"));
  EXPECT_THAT(api_.events, ::testing::ElementsAre("g:Gone:bye"));
  EXPECT_EQ(processor_.objects(), 0u);
}

TEST_F(ProcessorTest, AnObjectDeletedMidCycleEndsItWithoutWritesOrNullBodies) {
  AddHandler("event_fn", Cause::kEvent);
  AddHandler("a_fn", Cause::kCreate);
  AddHandler("b_fn", Cause::kCreate);
  Connect();
  Create(Example("x"));
  ASSERT_THAT(Delivered(), ::testing::ElementsAre("event_fn/CAUSE_EVENT"));
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  ASSERT_THAT(Delivered(), ::testing::ElementsAre("event_fn/CAUSE_EVENT",
                                                  "a_fn/CAUSE_CREATE"));
  // Deleted while a_fn runs (no finalizer holds it).
  api_.Emit(Kex(), "DELETED", Obj("x"));
  loop_.RunUntilIdle();
  Answer(v1::OUTCOME_STATUS_SUCCESS, [](v1::Outcome& o) {
    o.mutable_changes()->set_patch_json(R"({"metadata":{"labels":{"a":"1"}}})");
  });
  // b_fn is not called for a gone object; the raw-event handler hears the
  // deletion.
  ASSERT_THAT(Delivered(), ::testing::ElementsAre("event_fn/CAUSE_EVENT",
                                                  "a_fn/CAUSE_CREATE",
                                                  "event_fn/CAUSE_EVENT"));
  EXPECT_EQ(stream_.deliveries.back().event_type(), "DELETED");
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  for (const auto& d : stream_.deliveries) {
    EXPECT_TRUE(json::parse(d.body_json()).is_object()) << d.delivery_id();
  }
  // Nothing stored for it; a_fn's process hears its patch went nowhere.
  EXPECT_TRUE(api_.patches.empty());
  ASSERT_EQ(stream_.errors.size(), 1u);
  EXPECT_EQ(stream_.errors[0].code(), v1::PROTOCOL_ERROR_CODE_PATCH_REJECTED);
  EXPECT_THAT(stream_.errors[0].message(), HasSubstr("a_fn"));
  EXPECT_EQ(processor_.objects(), 0u);
  EXPECT_TRUE(processor_.Queues().empty());
}

TEST_F(ProcessorTest, QueuedRawEventsMergeIntoTheLatestState) {
  AddHandler("event_fn", Cause::kEvent);
  Connect();
  Create(Example("m"));
  ASSERT_EQ(stream_.deliveries.size(), 1u);  // ADDED, not answered yet.
  for (int i = 0; i < 50; ++i) {
    json obj = Obj("m");
    obj["spec"]["n"] = i;
    api_.Modify(obj);
  }
  loop_.RunUntilIdle();
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  // Fifty changes while the first event was out: one event, the latest.
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  EXPECT_EQ(stream_.deliveries[1].event_type(), "MODIFIED");
  EXPECT_EQ(json::parse(stream_.deliveries[1].body_json())["spec"]["n"], 49);
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  EXPECT_EQ(stream_.deliveries.size(), 2u);
}

TEST_F(ProcessorTest, ARawEventRunKeepsNoEventAliveOnceDone) {
  AddHandler("event_fn", Cause::kEvent);
  Connect();
  auto cached = [](const json& obj) {
    auto c = std::make_shared<cache::CachedObject>();
    c->key = {"ns", obj["metadata"]["name"].get<std::string>()};
    c->resource_version = obj["metadata"]["resourceVersion"];
    c->json = obj.dump();
    return c;
  };
  json obj = Example("w");
  obj["metadata"]["resourceVersion"] = "1";
  std::shared_ptr<cache::CachedObject> first = cached(obj);
  std::weak_ptr<cache::CachedObject> watched = first;
  processor_.OnEvent(Kex(), kube::WatchEvent{kube::WatchEvent::Type::kAdded,
                                             std::move(first), false});
  loop_.RunUntilIdle();
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  // A newer state takes the first one's place as the object's latest.
  obj["metadata"]["resourceVersion"] = "2";
  processor_.OnEvent(Kex(), kube::WatchEvent{kube::WatchEvent::Type::kModified,
                                             cached(obj), false});
  loop_.RunUntilIdle();
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  EXPECT_TRUE(watched.expired()) << "the first event's object is still alive";
}

TEST_F(ProcessorTest, TimeoutFailsTheHandlerBeforeALateAttempt) {
  AddHandler("create_fn", Cause::kCreate,
             [](HandlerSpec& s) { s.timeout = absl::Seconds(10); });
  Connect();
  Create(Example("t"));
  Answer(v1::OUTCOME_STATUS_TEMPORARY_ERROR,
         [](v1::Outcome& o) { o.mutable_delay()->set_seconds(20); });
  clock_.Advance(absl::Seconds(20));
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 1u);
  EXPECT_EQ(processor_.stats().at("create_fn").permanent_failures, 1u);
  EXPECT_FALSE(Ann("t", "herald.dev/last-handled-configuration").is_null());
}

TEST_F(ProcessorTest, ServerErrorsOnWritesAreThrottledThenRetried) {
  AddHandler("create_fn", Cause::kCreate);
  Connect();
  Create(Example("s"));
  api_.fail_next_with = 503;
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  EXPECT_TRUE(Ann("s", "herald.dev/last-handled-configuration").is_null());
  // The success was not stored, so it runs again after the throttle delay.
  clock_.Advance(absl::Seconds(1));
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  EXPECT_FALSE(Ann("s", "herald.dev/last-handled-configuration").is_null());
}

TEST_F(ProcessorTest, TimersFireOnScheduleNeverOverlapAndStopOnDeletion) {
  AddHandler("tick", Cause::kTimer, [](HandlerSpec& s) {
    s.timer.interval = absl::Seconds(10);
    s.timer.initial_delay = absl::Seconds(5);
  });
  Connect();
  Create(Example("t"));
  // A timer holds the finalizer, so that it stops before the object goes.
  EXPECT_EQ(Obj("t")["metadata"]["finalizers"],
            json::array({"herald.dev/finalizer"}));
  EXPECT_TRUE(stream_.deliveries.empty());
  clock_.Advance(absl::Seconds(5));
  loop_.RunUntilIdle();
  ASSERT_THAT(Delivered(), ::testing::ElementsAre("tick/CAUSE_TIMER"));
  // Not answered yet: time passes, no second run.
  clock_.Advance(absl::Seconds(30));
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 1u);
  Answer(v1::OUTCOME_STATUS_SUCCESS,
         [](v1::Outcome& o) { o.set_result_json("1"); });
  EXPECT_EQ(Obj("t")["status"]["tick"], 1);
  // The interval counts from the end of the previous run.
  clock_.Advance(absl::Seconds(9));
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 1u);
  clock_.Advance(absl::Seconds(1));
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  Answer(v1::OUTCOME_STATUS_TEMPORARY_ERROR,
         [](v1::Outcome& o) { o.mutable_delay()->set_seconds(3); });
  clock_.Advance(absl::Seconds(3));
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 3u);  // After the error's delay.
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  // Deletion stops the timer and releases the object.
  MarkDeleted(api_, "t");
  loop_.RunUntilIdle();
  EXPECT_EQ(Obj("t")["metadata"]["finalizers"], json::array());
  clock_.Advance(absl::Seconds(100));
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 3u);
  // No progress is ever stored for timers.
  for (const auto& p : api_.patches) {
    EXPECT_THAT(p.body, ::testing::Not(HasSubstr("herald.dev/tick")));
  }
}

TEST_F(ProcessorTest,
       IdleTimersWaitForTheObjectToSettleAndSharpOnesKeepTheGrid) {
  AddHandler("idle", Cause::kTimer, [](HandlerSpec& s) {
    s.timer.interval = absl::Seconds(1);
    s.timer.idle = absl::Seconds(20);
  });
  Connect();
  Create(Example("i"));
  clock_.Advance(absl::Seconds(10));
  loop_.RunUntilIdle();
  EXPECT_TRUE(stream_.deliveries.empty());
  // A change restarts the idle period.
  Obj("i");
  json changed = Obj("i");
  changed["spec"]["field"] = "changed";
  api_.Modify(changed);
  loop_.RunUntilIdle();
  clock_.Advance(absl::Seconds(15));
  loop_.RunUntilIdle();
  EXPECT_TRUE(stream_.deliveries.empty());
  clock_.Advance(absl::Seconds(5));
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 1u);
}

TEST_F(ProcessorTest, TimerErrorsFollowTheErrorsModeAndTheLimits) {
  AddHandler("permanent", Cause::kTimer, [](HandlerSpec& s) {
    s.timer.interval = absl::Seconds(100);
    s.errors = ErrorsMode::kPermanent;
  });
  AddHandler("limited", Cause::kTimer, [](HandlerSpec& s) {
    s.timer.interval = absl::Seconds(100);
    s.retries = 2;
  });
  Connect();
  Create(Example("p"));
  std::set<std::string> answered;
  auto runs = [&](const std::string& id) {
    std::vector<uint32_t> retries;
    for (const auto& d : stream_.deliveries) {
      if (d.handler_id() == id) retries.push_back(d.retry());
    }
    return retries;
  };
  auto answer = [&](const std::string& id, v1::OutcomeStatus status) {
    for (const auto& d : stream_.deliveries) {
      if (d.handler_id() == id && !answered.count(d.delivery_id())) {
        answered.insert(d.delivery_id());
        ASSERT_TRUE(Reply(1, d.delivery_id(), status, [](v1::Outcome& o) {
                      o.mutable_delay()->set_seconds(1);
                    }).ok());
        loop_.RunUntilIdle();
        return;
      }
    }
    FAIL() << "no delivery of " << id << " to answer";
  };
  ASSERT_EQ(runs("permanent").size(), 1u);
  // An unexpected error under errors=permanent fails the run for good:
  // the next comes at the interval, not after the backoff.
  answer("permanent", v1::OUTCOME_STATUS_UNEXPECTED_ERROR);
  EXPECT_EQ(processor_.stats().at("permanent").permanent_failures, 1u);
  ASSERT_EQ(runs("limited"), std::vector<uint32_t>{0});
  answer("limited", v1::OUTCOME_STATUS_TEMPORARY_ERROR);
  clock_.Advance(absl::Seconds(1));
  loop_.RunUntilIdle();
  ASSERT_EQ(runs("limited"), (std::vector<uint32_t>{0, 1}));
  answer("limited", v1::OUTCOME_STATUS_TEMPORARY_ERROR);
  // Two failed runs in a row: the limit, reached at 2 s; no third run until
  // the interval.
  clock_.Advance(absl::Seconds(1));
  loop_.RunUntilIdle();
  clock_.Advance(absl::Seconds(49));
  loop_.RunUntilIdle();
  EXPECT_EQ(runs("limited").size(), 2u);
  EXPECT_EQ(runs("permanent").size(), 1u);
  EXPECT_EQ(processor_.stats().at("limited").permanent_failures, 1u);
  // Both run again at their interval (100 s after the permanent failure at
  // 0 s, and after the limit reached at 2 s), the limited one counting from
  // scratch.
  clock_.Advance(absl::Seconds(49));
  loop_.RunUntilIdle();
  ASSERT_EQ(runs("permanent").size(), 2u);
  answer("permanent", v1::OUTCOME_STATUS_SUCCESS);
  clock_.Advance(absl::Seconds(2));
  loop_.RunUntilIdle();
  EXPECT_EQ(runs("limited"), (std::vector<uint32_t>{0, 1, 0}));
}

TEST_F(ProcessorTest, SharpTimersAlignToTheirGrid) {
  AddHandler("sharp", Cause::kTimer, [](HandlerSpec& s) {
    s.timer.interval = absl::Seconds(10);
    s.timer.sharp = true;
  });
  Connect();
  Create(Example("s"));
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 1u);  // At 0.
  clock_.Advance(absl::Seconds(4));          // The run takes 4 s.
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  clock_.Advance(absl::Seconds(5));
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 1u);
  clock_.Advance(absl::Seconds(1));  // At 10, not at 14.
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 2u);
}

TEST_F(ProcessorTest, IndicesFillBeforeHandlersRunAndFollowTheObjects) {
  AddHandler("by_app", Cause::kIndex);
  AddHandler("create_fn", Cause::kCreate,
             [](HandlerSpec& s) { s.indices.push_back("by_app"); });
  Connect();
  auto labelled = [](const std::string& name, const std::string& app) {
    json o = Example(name);
    o["metadata"]["labels"]["app"] = app;
    return o;
  };
  Create(labelled("a", "web"));
  ASSERT_THAT(Delivered(), ::testing::ElementsAre("by_app/CAUSE_INDEX"));
  Answer(v1::OUTCOME_STATUS_SUCCESS,
         [](v1::Outcome& o) { o.set_result_json(R"([["web","a"]])"); });
  Create(labelled("b", "db"));
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  Answer(v1::OUTCOME_STATUS_SUCCESS,
         [](v1::Outcome& o) { o.set_result_json(R"({"db":"b"})"); });
  // The listing is not complete yet: create_fn waits.
  EXPECT_EQ(stream_.deliveries.size(), 2u);
  processor_.OnListed(Kex(), "");
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 4u);
  for (int i : {2, 3}) {
    EXPECT_EQ(stream_.deliveries[i].handler_id(), "create_fn");
    EXPECT_EQ(stream_.deliveries[i].indices_json().at("by_app"),
              R"([["db",["b"]],["web",["a"]]])");
  }
  // A deleted object leaves the index.
  api_.Emit(Kex(), "DELETED", Obj("a"));
  loop_.RunUntilIdle();
  EXPECT_EQ(processor_.IndexJson("by_app").dump(), R"([["db",["b"]]])");
}

TEST_F(ProcessorTest, ALateIndexHandlerIndexesTheObjectsAlreadyKnown) {
  // Objects known and handled before any index handler registered.
  AddHandler("create_fn", Cause::kCreate);
  Connect();
  for (const char* name : {"a", "b"}) {
    json o = Example(name);
    o["metadata"]["labels"]["app"] = name;
    Create(o);
    Answer(v1::OUTCOME_STATUS_SUCCESS);
  }
  processor_.OnListed(Kex(), "");
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  // A process registers an index handler and a declarative index later:
  // both index the known objects, without an event about them.
  AddHandler("by_app", Cause::kIndex);
  AddHandler("by_label", Cause::kIndex, [](HandlerSpec& s) {
    s.index = IndexOptions{"app", ""};
  });
  Stream other(2);
  Connect(10, &other, 2);
  processor_.Reprocess(Kex().FullName());
  loop_.RunUntilIdle();
  EXPECT_FALSE(processor_.IndicesReady());
  // The index handler is the new process's alone.
  ASSERT_EQ(other.deliveries.size(), 2u);
  EXPECT_EQ(stream_.deliveries.size(), 2u);
  for (const auto& d : other.deliveries) {
    ASSERT_EQ(d.handler_id(), "by_app");
    const std::string name =
        json::parse(d.body_json())["metadata"]["name"].get<std::string>();
    ASSERT_TRUE(Reply(2, d.delivery_id(), v1::OUTCOME_STATUS_SUCCESS,
                      [&](v1::Outcome& o) {
                        o.set_result_json(json{{name, name}}.dump());
                      })
                    .ok());
    loop_.RunUntilIdle();
  }
  EXPECT_TRUE(processor_.IndicesReady());
  EXPECT_EQ(processor_.IndexJson("by_app").dump(),
            R"([["a",["a"]],["b",["b"]]])");
  EXPECT_EQ(processor_.IndexJson("by_label").dump(),
            R"([["a",[{"name":"a","namespace":"ns"}]],)"
            R"(["b",[{"name":"b","namespace":"ns"}]]])");
  // The same handlers registered again by another process index nothing
  // again.
  const size_t delivered = other.deliveries.size() + stream_.deliveries.size();
  processor_.Reprocess(Kex().FullName());
  loop_.RunUntilIdle();
  EXPECT_EQ(other.deliveries.size() + stream_.deliveries.size(), delivered);
}

TEST_F(ProcessorTest, IndexHandlersRunOncePerResourceVersion) {
  AddHandler("by_app", Cause::kIndex);
  AddHandler("tick", Cause::kTimer,
             [](HandlerSpec& s) { s.timer.interval = absl::Seconds(1); });
  AddHandler("monitor", Cause::kDaemon);
  Connect();
  processor_.OnListed(Kex(), "");
  // Index deliveries by the resourceVersion they index.
  std::map<std::string, int> indexed;
  std::string daemon_id;
  size_t answered = 0;
  int ticks = 0;
  // Answers every delivery out so far but the daemon's, as they come.
  auto answer_all = [&] {
    while (answered < stream_.deliveries.size()) {
      const v1::Delivery d = stream_.deliveries[answered++];
      if (d.cause() == v1::CAUSE_DAEMON) {
        daemon_id = d.delivery_id();
        continue;
      }
      ASSERT_TRUE(Reply(1, d.delivery_id(), v1::OUTCOME_STATUS_SUCCESS,
                        [&](v1::Outcome& o) {
                          if (d.cause() == v1::CAUSE_INDEX) {
                            ++indexed[d.object().resource_version()];
                            o.set_result_json(R"({"app":"x"})");
                          } else if (d.cause() == v1::CAUSE_TIMER) {
                            // Into the status.
                            o.set_result_json(std::to_string(++ticks));
                          }
                        })
                      .ok());
    }
  };
  Create(Example("x"));
  answer_all();
  ASSERT_FALSE(daemon_id.empty());
  for (int i = 1; i <= 10; ++i) {
    // The daemon and the timer write the status; the answers to their
    // patches arrive before the watch events of the changes.
    api_.hold_events = true;
    v1::ObjectChanges changes;
    changes.set_status_patch_json(json{{"monitor", {{"beat", i}}}}.dump());
    ASSERT_TRUE(Interim(daemon_id, changes).ok());
    loop_.RunUntilIdle();
    clock_.Advance(absl::Seconds(1));
    loop_.RunUntilIdle();
    answer_all();
    api_.ReleaseEvents();
    loop_.RunUntilIdle();
    answer_all();
  }
  EXPECT_GE(ticks, 10);  // Every round wrote the status.
  for (const auto& [rv, n] : indexed) {
    EXPECT_EQ(n, 1) << "resourceVersion " << rv << " indexed " << n << " times";
  }
  // As in Kopf, every new state is indexed, status-only changes too: the
  // latest one is.
  const std::string last =
      Obj("x")["metadata"]["resourceVersion"].get<std::string>();
  EXPECT_EQ(indexed.count(last), 1u);
  EXPECT_EQ(processor_.IndexJson("by_app").dump(), R"([["app",["x"]]])");
}

TEST_F(ProcessorTest, DeliveriesWaitingForACreditCostConstantWorkEach) {
  // N objects wait for one credit: every step of the loop is counted, and
  // stays a few per object however long the queue (nothing polls or
  // rescans the waiting objects).
  AddHandler("create_fn", Cause::kCreate);
  Connect(1);
  processor_.OnListed(Kex(), "");
  constexpr int kObjects = 300;
  size_t steps = 0;
  for (int i = 0; i < kObjects; ++i) {
    api_.Add(Example(absl::StrCat("w", i)));
    steps += loop_.RunUntilIdle();
  }
  ASSERT_EQ(stream_.deliveries.size(), 1u);
  EXPECT_EQ(dispatcher_.queued(), kObjects - 1u);
  size_t answered = 0;
  while (answered < stream_.deliveries.size()) {
    v1::Outcome o;
    o.set_delivery_id(stream_.deliveries[answered++].delivery_id());
    o.set_status(v1::OUTCOME_STATUS_SUCCESS);
    StreamError code;
    ASSERT_TRUE(
        dispatcher_
            .OnOutcome(1,
                       session::OutcomeFromWire(
                           o, *session::ParseDeliveryId(o.delivery_id())),
                       &code)
            .ok());
    steps += loop_.RunUntilIdle();
  }
  EXPECT_EQ(answered, static_cast<size_t>(kObjects));
  EXPECT_EQ(dispatcher_.queued(), 0u);
  // Per object: its event, the write of its results and the event of that.
  EXPECT_LE(steps, 5u * kObjects);
}

TEST_F(ProcessorTest, ObjectMemosStartAsACopyOfTheOperatorMemo) {
  registry_ = Registry();
  EngineOptions o;
  o.operator_memo = json{{"region", "eu"}};
  Processor p(&loop_, &registry_, &dispatcher_, &api_, o);
  api_.processor = &p;
  AddHandler("create_fn", Cause::kCreate);
  Connect();
  Create(Example("a"));
  ASSERT_EQ(stream_.deliveries.size(), 1u);
  EXPECT_EQ(json::parse(stream_.deliveries[0].memo_json()), o.operator_memo);
  Answer(v1::OUTCOME_STATUS_SUCCESS, [](v1::Outcome& out) {
    out.mutable_changes()->set_memo_patch_json(R"({"n":1})");
  });
  Create(Example("b"));
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  // Each object has its own: b's copy does not see a's update.
  EXPECT_EQ(json::parse(stream_.deliveries[1].memo_json()), o.operator_memo);
  EXPECT_EQ(*p.MemoOf(Kex().FullName(), {"ns", "a"}),
            (json{{"region", "eu"}, {"n", 1}}));
}

TEST_F(ProcessorTest, KopfPrefixReadsKopfsAnnotations) {
  registry_ = Registry();
  EngineOptions o;
  o.prefix = "kopf.zalando.org";
  Processor kopf(&loop_, &registry_, &dispatcher_, &api_, o);
  api_.processor = &kopf;
  EXPECT_EQ(kopf.finalizer(), "kopf.zalando.org/KopfFinalizerMarker");
  AddHandler("create_fn", Cause::kCreate);
  AddHandler("update_fn", Cause::kUpdate);
  Connect();
  // An object a Kopf operator already handled: nothing to do.
  json obj = Example("k");
  obj["metadata"]["annotations"]
     ["kopf.zalando.org/last-handled-configuration"] =
         R"({"spec":{"field":"value"}})"
         "\n";
  Create(obj);
  EXPECT_TRUE(stream_.deliveries.empty());
  EXPECT_TRUE(api_.patches.empty());
}

void MarkDeleted(FakeApi& api, const std::string& name) {
  json obj = api.objects[name];
  obj["metadata"]["deletionTimestamp"] = "2026-11-24T00:00:00Z";
  api.Modify(obj);
}

TEST_F(ProcessorTest, DaemonsRunWithoutCreditsApplyInterimChangesAndStop) {
  AddHandler("daemon", Cause::kDaemon, [](HandlerSpec& s) {
    s.daemon.cancellation_backoff = absl::Seconds(5);
  });
  AddHandler("create_fn", Cause::kCreate);
  Connect(1);
  Create(Example("d"));
  EXPECT_EQ(Obj("d")["metadata"]["finalizers"],
            json::array({"herald.dev/finalizer"}));
  // The daemon runs and create_fn still gets the only credit.
  ASSERT_THAT(Delivered(), ::testing::ElementsAre("create_fn/CAUSE_CREATE",
                                                  "daemon/CAUSE_DAEMON"));
  const std::string daemon_id = stream_.deliveries[1].delivery_id();
  ASSERT_TRUE(
      Reply(1, stream_.deliveries[0].delivery_id(), v1::OUTCOME_STATUS_SUCCESS)
          .ok());
  EXPECT_EQ(processor_.daemons_running(), 1u);
  // Changes sent while running are applied at once.
  v1::ObjectChanges changes;
  changes.set_patch_json(R"({"spec":{"seen":true}})");
  changes.set_status_patch_json(R"({"daemon":{"beat":1}})");
  ASSERT_TRUE(Interim(daemon_id, changes).ok());
  loop_.RunUntilIdle();
  EXPECT_EQ(Obj("d")["spec"]["seen"], true);
  EXPECT_EQ(Obj("d")["status"]["daemon"]["beat"], 1);
  changes.set_patch_json("[1]");
  EXPECT_TRUE(absl::IsInvalidArgument(Interim(daemon_id, changes)));
  changes.set_patch_json("{}");
  EXPECT_TRUE(absl::IsNotFound(Interim("d-999", changes)));
  // Deletion: a polite stop, then a forced one after the backoff; the
  // finalizer stays until the daemon ends.
  MarkDeleted(api_, "d");
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.stops.size(), 1u);
  EXPECT_EQ(stream_.stops[0].delivery_id(), daemon_id);
  EXPECT_FALSE(stream_.stops[0].force());
  EXPECT_EQ(stream_.stops[0].reason(), v1::STOP_REASON_OBJECT_DELETED);
  EXPECT_EQ(Obj("d")["metadata"]["finalizers"],
            json::array({"herald.dev/finalizer"}));
  clock_.Advance(absl::Seconds(5));
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.stops.size(), 2u);
  EXPECT_TRUE(stream_.stops[1].force());
  EXPECT_EQ(Obj("d")["metadata"]["finalizers"],
            json::array({"herald.dev/finalizer"}));
  ASSERT_TRUE(Reply(1, daemon_id, v1::OUTCOME_STATUS_SUCCESS).ok());
  EXPECT_EQ(Obj("d")["metadata"]["finalizers"], json::array());
  EXPECT_EQ(processor_.daemons_running(), 0u);
}

TEST_F(ProcessorTest, ADaemonThatIgnoresCancellationIsReleasedAfterTimeout) {
  AddHandler("daemon", Cause::kDaemon, [](HandlerSpec& s) {
    s.daemon.cancellation_timeout = absl::Seconds(10);
  });
  Connect();
  Create(Example("d"));
  ASSERT_EQ(stream_.deliveries.size(), 1u);
  MarkDeleted(api_, "d");
  loop_.RunUntilIdle();
  // No backoff: the polite stop and the forced one come together.
  ASSERT_EQ(stream_.stops.size(), 2u);
  EXPECT_TRUE(stream_.stops[1].force());
  clock_.Advance(absl::Seconds(9));
  loop_.RunUntilIdle();
  EXPECT_EQ(Obj("d")["metadata"]["finalizers"],
            json::array({"herald.dev/finalizer"}));
  clock_.Advance(absl::Seconds(1));
  loop_.RunUntilIdle();
  EXPECT_EQ(Obj("d")["metadata"]["finalizers"], json::array());
  // Its late outcome is for a delivery the sidecar gave up on.
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  EXPECT_EQ(last_code_, v1::PROTOCOL_ERROR_CODE_UNKNOWN_DELIVERY);
}

TEST_F(ProcessorTest, DaemonsRestartElsewhereAfterErrorsNotAfterReturning) {
  AddHandler("daemon", Cause::kDaemon);
  Connect();
  Create(Example("d"));
  ASSERT_EQ(stream_.deliveries.size(), 1u);
  EXPECT_FALSE(stream_.deliveries[0].restarted());
  // Its process goes away: the daemon runs on the next one, marked.
  dispatcher_.RemoveStream(1);
  loop_.RunUntilIdle();
  Stream other(2);
  Connect(1, &other, 2);
  loop_.RunUntilIdle();
  ASSERT_EQ(other.deliveries.size(), 1u);
  EXPECT_TRUE(other.deliveries[0].restarted());
  EXPECT_EQ(other.deliveries[0].cause(), v1::CAUSE_DAEMON);
  // A temporary error restarts it after the delay.
  ASSERT_TRUE(Reply(2, other.deliveries[0].delivery_id(),
                    v1::OUTCOME_STATUS_TEMPORARY_ERROR,
                    [](v1::Outcome& o) { o.mutable_delay()->set_seconds(7); })
                  .ok());
  clock_.Advance(absl::Seconds(6));
  loop_.RunUntilIdle();
  EXPECT_EQ(other.deliveries.size(), 1u);
  clock_.Advance(absl::Seconds(1));
  loop_.RunUntilIdle();
  ASSERT_EQ(other.deliveries.size(), 2u);
  // Returning normally ends it for good.
  ASSERT_TRUE(
      Reply(2, other.deliveries[1].delivery_id(), v1::OUTCOME_STATUS_SUCCESS)
          .ok());
  clock_.Advance(absl::Seconds(600));
  loop_.RunUntilIdle();
  EXPECT_EQ(other.deliveries.size(), 2u);
  EXPECT_EQ(processor_.Daemons().size(), 1u);
  EXPECT_EQ(processor_.Daemons()[0].state, "done");
  // Being done, it no longer holds the finalizer at deletion.
  MarkDeleted(api_, "d");
  loop_.RunUntilIdle();
  EXPECT_EQ(Obj("d")["metadata"]["finalizers"], json::array());
}

TEST_F(ProcessorTest, RestartedDaemonsCarryTheirAttemptCountAndFirstStart) {
  AddHandler("daemon", Cause::kDaemon, [](HandlerSpec& s) {
    s.labels["run"].match = MetaMatch::kPresent;
  });
  Connect();
  auto labelled = [&](bool run) {
    json o = Obj("d");
    if (run) {
      o["metadata"]["labels"]["run"] = "yes";
    } else {
      o["metadata"]["labels"].erase("run");
    }
    api_.Modify(o);
    loop_.RunUntilIdle();
  };
  json obj = Example("d");
  obj["metadata"]["labels"]["run"] = "yes";
  Create(obj);
  const auto first = runtime::ToProtoTime(clock_.Now());
  ASSERT_EQ(stream_.deliveries.size(), 1u);
  EXPECT_EQ(stream_.deliveries[0].retry(), 0u);
  EXPECT_EQ(stream_.deliveries[0].started().seconds(), first.seconds());
  // An error restarts it after the delay: the second attempt, same start.
  clock_.Advance(absl::Seconds(3));
  Answer(v1::OUTCOME_STATUS_TEMPORARY_ERROR,
         [](v1::Outcome& o) { o.mutable_delay()->set_seconds(5); });
  clock_.Advance(absl::Seconds(5));
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  EXPECT_EQ(stream_.deliveries[1].retry(), 1u);
  EXPECT_EQ(stream_.deliveries[1].started().seconds(), first.seconds());
  // An unexpected error counts too (restarted after the backoff).
  Answer(v1::OUTCOME_STATUS_UNEXPECTED_ERROR);
  clock_.Advance(absl::Seconds(60));
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 3u);
  EXPECT_EQ(stream_.deliveries[2].retry(), 2u);
  EXPECT_EQ(stream_.deliveries[2].started().seconds(), first.seconds());
  // Its process going away is no new attempt: the same one runs elsewhere.
  dispatcher_.RemoveStream(1);
  Stream other(2);
  Connect(1, &other);
  loop_.RunUntilIdle();
  ASSERT_EQ(other.deliveries.size(), 1u);
  EXPECT_TRUE(other.deliveries[0].restarted());
  EXPECT_EQ(other.deliveries[0].retry(), 2u);
  EXPECT_EQ(other.deliveries[0].started().seconds(), first.seconds());
  ASSERT_TRUE(
      Reply(1, other.deliveries[0].delivery_id(), v1::OUTCOME_STATUS_SUCCESS)
          .ok());
  // Stopped by its filter and started again: a new daemon, from scratch.
  labelled(false);
  clock_.Advance(absl::Seconds(10));
  labelled(true);
  ASSERT_EQ(other.deliveries.size(), 2u);
  EXPECT_EQ(other.deliveries[1].retry(), 0u);
  EXPECT_EQ(other.deliveries[1].started().seconds(),
            runtime::ToProtoTime(clock_.Now()).seconds());
}

TEST_F(ProcessorTest, DaemonsStopForGoodAtTheirRetriesLimit) {
  AddHandler("daemon", Cause::kDaemon, [](HandlerSpec& s) { s.retries = 2; });
  Connect();
  Create(Example("d"));
  ASSERT_EQ(stream_.deliveries.size(), 1u);
  Answer(v1::OUTCOME_STATUS_TEMPORARY_ERROR,
         [](v1::Outcome& o) { o.mutable_delay()->set_seconds(1); });
  clock_.Advance(absl::Seconds(1));
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  EXPECT_EQ(stream_.deliveries[1].retry(), 1u);
  // The second failed attempt reaches the limit: not restarted.
  Answer(v1::OUTCOME_STATUS_TEMPORARY_ERROR,
         [](v1::Outcome& o) { o.mutable_delay()->set_seconds(1); });
  clock_.Advance(absl::Seconds(600));
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 2u);
  ASSERT_EQ(processor_.Daemons().size(), 1u);
  EXPECT_EQ(processor_.Daemons()[0].state, "done");
  EXPECT_EQ(processor_.stats().at("daemon").permanent_failures, 1u);
  // Done, it no longer holds the finalizer at deletion.
  MarkDeleted(api_, "d");
  loop_.RunUntilIdle();
  EXPECT_EQ(Obj("d")["metadata"]["finalizers"], json::array());
}

TEST_F(ProcessorTest, DaemonsStopForGoodPastTheirTimeoutSinceTheFirstAttempt) {
  AddHandler("daemon", Cause::kDaemon,
             [](HandlerSpec& s) { s.timeout = absl::Seconds(30); });
  Connect();
  Create(Example("d"));
  ASSERT_EQ(stream_.deliveries.size(), 1u);
  clock_.Advance(absl::Seconds(20));
  Answer(v1::OUTCOME_STATUS_TEMPORARY_ERROR,
         [](v1::Outcome& o) { o.mutable_delay()->set_seconds(5); });
  clock_.Advance(absl::Seconds(5));
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 2u);  // 25 s in: within the timeout.
  Answer(v1::OUTCOME_STATUS_TEMPORARY_ERROR,
         [](v1::Outcome& o) { o.mutable_delay()->set_seconds(5); });
  clock_.Advance(absl::Seconds(5));
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 2u);  // 30 s in: timed out.
  EXPECT_EQ(processor_.Daemons()[0].state, "done");
  EXPECT_EQ(processor_.stats().at("daemon").permanent_failures, 1u);
}

TEST_F(ProcessorTest, ShutdownStopsDaemonsAndStartsNoNewOnes) {
  AddHandler("daemon", Cause::kDaemon);
  Connect();
  Create(Example("a"));
  ASSERT_EQ(stream_.deliveries.size(), 1u);
  bool released = false;
  processor_.StopAllDaemons([&] { released = true; });
  loop_.RunUntilIdle();
  ASSERT_FALSE(stream_.stops.empty());
  EXPECT_EQ(stream_.stops[0].reason(), v1::STOP_REASON_SHUTDOWN);
  EXPECT_FALSE(released);  // The daemon has not answered yet.
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  EXPECT_EQ(processor_.daemons_running(), 0u);
  EXPECT_TRUE(released);
  Create(Example("b"));
  EXPECT_EQ(stream_.deliveries.size(), 1u);
  // With no daemon running, `released` comes at once.
  bool none = false;
  processor_.StopAllDaemons([&] { none = true; });
  loop_.RunUntilIdle();
  EXPECT_TRUE(none);
}

// The loop's contract, enforced: the processor's entry points abort when
// called from a thread other than the one that runs its loop.
using ProcessorDeathTest = ProcessorTest;
TEST_F(ProcessorDeathTest, EntryPointsOffTheLoopThreadAbort) {
  AddHandler("create_fn", Cause::kCreate);
  Connect();
  Create(Example("a"));  // This thread runs the loop.
  ASSERT_EQ(stream_.deliveries.size(), 1u);
  EXPECT_DEATH(
      {
        std::thread foreign([&] { processor_.Reprocess(Kex().FullName()); });
        foreign.join();
      },
      "Processor::Reprocess.*called off its event loop's thread");
  EXPECT_DEATH(
      {
        std::thread foreign([&] { (void)processor_.Queues(); });
        foreign.join();
      },
      "Processor::Queues.*called off its event loop's thread");
  // The watch side may call from any thread: its events are posted, and
  // handled on the loop.
  std::thread watch([&] {
    json b = Example("b");
    b["metadata"]["resourceVersion"] = "100";
    b["metadata"]["uid"] = "uid-b";
    api_.objects["b"] = b;
    api_.Emit(Kex(), "ADDED", b);
  });
  watch.join();
  loop_.RunUntilIdle();
  EXPECT_EQ(stream_.deliveries.size(), 2u);
}

TEST_F(ProcessorTest, DeclarativeIndicesNeedNoHandlerCalls) {
  AddHandler("by_app", Cause::kIndex, [](HandlerSpec& s) {
    s.index = IndexOptions{"app", ""};
  });
  AddHandler("by_field", Cause::kIndex, [](HandlerSpec& s) {
    s.index = IndexOptions{"", "spec.field"};
  });
  AddHandler("create_fn", Cause::kCreate,
             [](HandlerSpec& s) { s.indices.push_back("by_app"); });
  Connect();
  json a = Example("a");
  a["metadata"]["labels"]["app"] = "web";
  Create(a);
  Create(Example("b"));  // No label: only in the field index.
  EXPECT_TRUE(stream_.deliveries.empty());  // Waits for the listing.
  processor_.OnListed(Kex(), "");
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  for (const auto& d : stream_.deliveries) {
    EXPECT_EQ(d.handler_id(), "create_fn");
    EXPECT_EQ(d.indices_json().at("by_app"),
              R"([["web",[{"name":"a","namespace":"ns"}]]])");
  }
  EXPECT_EQ(processor_.IndexJson("by_field").dump(),
            R"([["value",[{"name":"a","namespace":"ns"},)"
            R"({"name":"b","namespace":"ns"}]]])");
  // A changed label moves the entry; a deleted object leaves.
  json moved = Obj("a");
  moved["metadata"]["labels"]["app"] = "db";
  api_.Modify(moved);
  loop_.RunUntilIdle();
  EXPECT_EQ(processor_.IndexJson("by_app").dump(),
            R"([["db",[{"name":"a","namespace":"ns"}]]])");
  api_.Emit(Kex(), "DELETED", Obj("b"));
  loop_.RunUntilIdle();
  EXPECT_EQ(processor_.IndexJson("by_field").dump(),
            R"([["value",[{"name":"a","namespace":"ns"}]]])");
}

TEST_F(ProcessorTest, InspectionSeesQueuesAndTimers) {
  AddHandler("create_fn", Cause::kCreate);
  AddHandler("tick", Cause::kTimer, [](HandlerSpec& s) {
    s.timer.interval = absl::Seconds(10);
    s.timer.initial_delay = absl::Seconds(30);
  });
  Connect();
  Create(Example("q"));
  const auto queues = processor_.Queues();
  ASSERT_EQ(queues.size(), 1u);
  EXPECT_EQ(queues[0].key.name, "q");
  EXPECT_EQ(queues[0].handler_id, "create_fn");
  EXPECT_EQ(queues[0].purpose, "create");
  EXPECT_EQ(DeliveryName(queues[0].delivery),
            stream_.deliveries.back().delivery_id());
  const auto timers = processor_.Timers();
  ASSERT_EQ(timers.size(), 1u);
  EXPECT_EQ(timers[0].handler_id, "tick");
  EXPECT_EQ(timers[0].next_run, clock_.Now() + absl::Seconds(30));
  Answer(v1::OUTCOME_STATUS_SUCCESS);
  EXPECT_TRUE(processor_.Queues().empty());
}

TEST_F(ProcessorTest, SubHandlersKeepProgressPerChildUntilAllAreDone) {
  AddHandler("create_fn", Cause::kCreate);
  Connect();
  Create(Example("s"));
  ASSERT_EQ(stream_.deliveries.size(), 1u);
  EXPECT_EQ(stream_.deliveries[0].done_subhandler_ids_size(), 0);
  auto child = [](v1::Outcome& o, const std::string& id,
                  v1::OutcomeStatus status) {
    auto* c = o.add_subhandlers();
    c->set_id(id);
    c->set_status(status);
    if (status == v1::OUTCOME_STATUS_TEMPORARY_ERROR) {
      c->set_message("not yet");
      c->mutable_delay()->set_seconds(5);
    }
  };
  Answer(v1::OUTCOME_STATUS_SUCCESS, [&](v1::Outcome& o) {
    child(o, "create_fn/a", v1::OUTCOME_STATUS_SUCCESS);
    child(o, "create_fn/b", v1::OUTCOME_STATUS_TEMPORARY_ERROR);
  });
  // The parent waits for b; each child has its own record.
  const json parent =
      json::parse(Ann("s", "herald.dev/create_fn").get<std::string>());
  EXPECT_EQ(parent["subrefs"], json::array({"create_fn/a", "create_fn/b"}));
  EXPECT_EQ(parent["success"], false);
  EXPECT_THAT(parent["message"].get<std::string>(), HasSubstr("create_fn/b"));
  EXPECT_EQ(
      json::parse(
          Ann("s", "herald.dev/create_fn.a").get<std::string>())["success"],
      true);
  EXPECT_EQ(
      json::parse(
          Ann("s", "herald.dev/create_fn.b").get<std::string>())["message"],
      "not yet");
  // Again after the child's delay, telling the client a is done.
  clock_.Advance(absl::Seconds(5));
  loop_.RunUntilIdle();
  ASSERT_EQ(stream_.deliveries.size(), 2u);
  EXPECT_THAT(stream_.deliveries[1].done_subhandler_ids(),
              ::testing::ElementsAre("create_fn/a"));
  Answer(v1::OUTCOME_STATUS_SUCCESS, [&](v1::Outcome& o) {
    child(o, "create_fn/b", v1::OUTCOME_STATUS_SUCCESS);
  });
  // All done: every key goes, the diff-base is stored.
  EXPECT_TRUE(Ann("s", "herald.dev/create_fn").is_null());
  EXPECT_TRUE(Ann("s", "herald.dev/create_fn.a").is_null());
  EXPECT_TRUE(Ann("s", "herald.dev/create_fn.b").is_null());
  EXPECT_FALSE(Ann("s", "herald.dev/last-handled-configuration").is_null());
}

TEST_F(ProcessorTest, AFailedSubHandlerFailsItsParent) {
  AddHandler("create_fn", Cause::kCreate);
  Connect();
  Create(Example("f"));
  Answer(v1::OUTCOME_STATUS_SUCCESS, [](v1::Outcome& o) {
    auto* c = o.add_subhandlers();
    c->set_id("create_fn/x");
    c->set_status(v1::OUTCOME_STATUS_PERMANENT_ERROR);
    c->set_message("broken");
  });
  EXPECT_EQ(stream_.deliveries.size(), 1u);
  EXPECT_FALSE(Ann("f", "herald.dev/last-handled-configuration").is_null());
  EXPECT_EQ(processor_.stats().at("create_fn").permanent_failures, 1u);
}

TEST_F(ProcessorTest, PendingHandlerHoldsTheCyclesItCouldBelongTo) {
  // The create handler's resource could not be resolved at registration
  // (an API server restarting): a cycle run by the delete handler alone
  // would store the diff-base, and create_fn would never run.
  AddHandler("delete_fn", Cause::kDelete);
  ASSERT_TRUE(registry_
                  .AddPending(Spec("create_fn", Cause::kCreate),
                              "cannot resolve yet", clock_.Now())
                  .ok());
  handler_ids_.push_back("create_fn");
  Connect();
  Create(Example("a"));
  EXPECT_TRUE(stream_.deliveries.empty());
  EXPECT_TRUE(api_.patches.empty());
  EXPECT_TRUE(registry_.HasPendingFor(Kex()));
  // Resolved: the held object goes on, and the create handler runs.
  EXPECT_THAT(registry_.Resolve("kopfexamples", Kex(), nullptr),
              ::testing::ElementsAre("create_fn"));
  EXPECT_FALSE(registry_.HasPendingFor(Kex()));
  processor_.Reprocess(Kex().FullName());
  loop_.RunUntilIdle();
  ASSERT_THAT(Delivered(), ::testing::ElementsAre("create_fn/CAUSE_CREATE"));
}

TEST(RegistryTest, PendingHandlersResolveAndConflictLikeOthers) {
  Registry r;
  HandlerSpec s;
  s.id = "create_fn";
  s.resource = "kex";
  s.cause = Cause::kCreate;
  ASSERT_TRUE(r.AddPending(s, "why", absl::UnixEpoch()).ok());
  // The same spec again (a reconnect) is fine; another spec under the id
  // is not.
  EXPECT_TRUE(r.AddPending(s, "why again", absl::UnixEpoch()).ok());
  HandlerSpec other = s;
  other.cause = Cause::kUpdate;
  EXPECT_FALSE(r.AddPending(other, "why", absl::UnixEpoch()).ok());
  kube::ResourceInfo pods;
  pods.version = "v1";
  pods.plural = "pods";
  pods.kind = "Pod";
  EXPECT_FALSE(r.HasPendingFor(pods));
  kube::ResourceInfo kex = Kex();
  kex.short_names = {"kex"};
  EXPECT_TRUE(r.HasPendingFor(kex));
  EXPECT_TRUE(r.Resolve("pods", pods, nullptr).empty());
  EXPECT_THAT(r.Resolve("kex", kex, nullptr),
              ::testing::ElementsAre("create_fn"));
  EXPECT_TRUE(r.pending().empty());
  ASSERT_NE(r.Find("create_fn"), nullptr);
  EXPECT_EQ(r.ForResource(kex.FullName()).size(), 1u);
}

}  // namespace
}  // namespace herald::engine
