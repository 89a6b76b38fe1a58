// Raw-event and index runs are the busiest paths of the processor: whatever a
// run allocates must be freed once it is done. This binary counts the heap
// blocks alive (global operator new and delete are replaced here) and checks
// that a thousand more runs leave none behind.
#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/engine/processor.h"
#include "server/engine/test_resources.h"
#include "server/session/wire.h"

namespace {
std::atomic<int64_t> live_blocks{0};

void* Allocate(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p != nullptr) live_blocks.fetch_add(1, std::memory_order_relaxed);
  return p;
}
void Free(void* p) {
  if (p == nullptr) return;
  live_blocks.fetch_sub(1, std::memory_order_relaxed);
  std::free(p);
}
}  // namespace

void* operator new(std::size_t n) {
  void* p = Allocate(n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new[](std::size_t n) {
  void* p = Allocate(n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return Allocate(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return Allocate(n);
}
void operator delete(void* p) noexcept { Free(p); }
void operator delete[](void* p) noexcept { Free(p); }
void operator delete(void* p, std::size_t) noexcept { Free(p); }
void operator delete[](void* p, std::size_t) noexcept { Free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { Free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { Free(p); }

namespace herald::engine {
namespace {

using nlohmann::json;

// Index and raw-event runs write nothing.
class NoWrites : public ObjectWriter {
 public:
  void Patch(const kube::ResourceInfo&, const cache::ObjectKey&,
             kube::PatchType, std::string, bool, WriteDone done) override {
    ADD_FAILURE() << "unexpected PATCH";
    done(absl::InternalError("unexpected"));
  }
  void PostEvent(kube::InvolvedObject, kube::EventKind, std::string,
                 std::string) override {
    ADD_FAILURE() << "unexpected Event";
  }
};

// Keeps only the last delivery's id: the test's own bookkeeping must not
// grow with the number of runs.
class LastDelivery : public session::WireSink {
 public:
  LastDelivery() : WireSink(1, 16 << 20, "test") {}
  void Write(v1::ConnectResponse m) override {
    if (m.has_delivery()) {
      id = m.delivery().delivery_id();
      ++count;
    }
  }
  std::string id;
  size_t count = 0;
};

using ::herald::engine::testing::Kex;
using ::herald::engine::testing::Spec;

class ProcessorLeakTest : public ::testing::Test {
 protected:
  ProcessorLeakTest()
      : loop_(&clock_), processor_(&loop_, &registry_, &dispatcher_, &api_) {}

  void Serve(const std::string& id, Cause cause) {
    ASSERT_TRUE(registry_.Add(Spec(id, cause), Kex()).ok());
    StreamInfo info;
    info.stream = 1;
    info.credits = 1;
    info.handler_ids = {id};
    dispatcher_.AddStream(info, &sink_);
    processor_.OnListed(Kex(), "");
  }

  // One change of the object and the one run it causes, answered.
  void OneRun(int n) {
    json obj = {{"apiVersion", "kopf.dev/v1"},
                {"kind", "KopfExample"},
                {"metadata",
                 {{"name", "obj"},
                  {"namespace", "ns"},
                  {"uid", "uid-1"},
                  {"resourceVersion", std::to_string(1000 + n)}}},
                {"spec", {{"n", n}}}};
    auto object = std::make_shared<cache::CachedObject>();
    object->key = {"ns", "obj"};
    object->uid = "uid-1";
    object->resource_version = std::to_string(1000 + n);
    object->json = obj.dump();
    processor_.OnEvent(
        Kex(), kube::WatchEvent{n == 0 ? kube::WatchEvent::Type::kAdded
                                       : kube::WatchEvent::Type::kModified,
                                std::move(object), false});
    loop_.RunUntilIdle();
    ASSERT_EQ(sink_.count, static_cast<size_t>(n + 1));
    v1::Outcome o;
    o.set_delivery_id(sink_.id);
    o.set_status(v1::OUTCOME_STATUS_SUCCESS);
    o.set_result_json(R"({"key":"value"})");
    StreamError code;
    ASSERT_TRUE(dispatcher_
                    .OnOutcome(1,
                               session::OutcomeFromWire(
                                   o, *session::ParseDeliveryId(sink_.id)),
                               &code)
                    .ok());
    loop_.RunUntilIdle();
  }

  // Blocks still alive after `runs` more runs than before.
  int64_t GrowthOver(int runs) {
    // Warm up past every bounded structure (the dispatcher remembers the
    // last 4096 answered ids per stream).
    for (int i = 0; i < 5000; ++i) {
      OneRun(i);
      if (HasFatalFailure()) return -1;
    }
    const int64_t before = live_blocks.load();
    for (int i = 5000; i < 5000 + runs; ++i) {
      OneRun(i);
      if (HasFatalFailure()) return -1;
    }
    return live_blocks.load() - before;
  }

  runtime::FakeClock clock_;
  runtime::EventLoop loop_;
  Registry registry_;
  Dispatcher dispatcher_{&loop_};
  NoWrites api_;
  LastDelivery sink_;
  Processor processor_;
};

TEST_F(ProcessorLeakTest, RawEventRunsFreeEverythingTheyAllocate) {
  Serve("event_fn", Cause::kEvent);
  const int64_t growth = GrowthOver(1000);
  // A leak of even one block per run would be 1000.
  EXPECT_LT(growth, 50) << "heap blocks still alive after 1000 more runs";
}

TEST_F(ProcessorLeakTest, IndexRunsFreeEverythingTheyAllocate) {
  Serve("by_n", Cause::kIndex);
  const int64_t growth = GrowthOver(1000);
  EXPECT_LT(growth, 50) << "heap blocks still alive after 1000 more runs";
  EXPECT_EQ(processor_.IndexJson("by_n").dump(), R"([["key",["value"]]])");
}

}  // namespace
}  // namespace herald::engine
