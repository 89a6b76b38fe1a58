// One thread that runs posted tasks in order, and timers when due. State
// owned by a component that runs on a loop needs no locks: other threads
// Post() to it.
#ifndef HERALD_SERVER_RUNTIME_EVENT_LOOP_H_
#define HERALD_SERVER_RUNTIME_EVENT_LOOP_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/runtime/clock.h"

namespace herald::runtime {

// Thread-safe: Post, PostAt, Cancel, Stop, InLoopThread and IsThreadSafe may
// be called from any thread.
//
// Once stopped, a loop runs nothing more: Stop releases the tasks and timers
// still queued (destroying them, and what they hold, on the caller's thread),
// and Post and PostAt refuse new ones. A caller that waits for a task must
// look at what Post returns, or it waits forever.
class EventLoop {
 public:
  using Task = std::function<void()>;
  using TimerId = uint64_t;

  explicit EventLoop(Clock* clock = Clock::Real()) : clock_(clock) {}

  // Queues `task`. False, with `task` destroyed at once, after Stop.
  bool Post(Task task);
  // Runs `task` on the loop at `when` or as soon after as the loop is free.
  // Returns 0 (never a timer's id), with `task` destroyed, after Stop.
  TimerId PostAt(absl::Time when, Task task);
  // A timer that has not run yet does not run. Unknown ids are ignored.
  void Cancel(TimerId id);

  // Runs tasks until Stop(). Call from the thread that owns the loop.
  void Run();
  // Stops Run (after the task it is running, if any), releases what is
  // queued, and makes Post and PostAt refuse tasks. Idempotent.
  void Stop();
  bool stopped() const;

  // For tests with a FakeClock: runs every task posted and every timer due
  // at the clock's current time, until none is left. Returns how many ran.
  size_t RunUntilIdle();

  // True on the thread inside Run (or RunUntilIdle), while it is inside.
  bool InLoopThread() const {
    return std::this_thread::get_id() == owner_.load(std::memory_order_acquire);
  }
  // True where loop-owned state may be touched: on the thread that last
  // entered Run or RunUntilIdle (inside it, or between runs, as a test that
  // drives the loop with RunUntilIdle does), or on any thread before the
  // loop first ran (while its owner is being set up). What
  // HERALD_ASSERT_ON_LOOP checks.
  bool IsThreadSafe() const {
    const std::thread::id runner = runner_.load(std::memory_order_acquire);
    return runner == std::thread::id() || runner == std::this_thread::get_id();
  }
  Clock* clock() const { return clock_; }
  // The time of the earliest pending timer, or InfiniteFuture.
  absl::Time NextTimer();

 private:
  // Takes the next task that is ready at `now`; false when none.
  bool TakeReady(absl::Time now, Task* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Sets the owner for as long as it lives.
  class Owner;

  Clock* clock_;
  mutable absl::Mutex mu_;
  std::deque<Task> tasks_ ABSL_GUARDED_BY(mu_);
  // (when, id) to task: ordered by time, then by posting order.
  std::map<std::pair<absl::Time, TimerId>, Task> timers_ ABSL_GUARDED_BY(mu_);
  std::map<TimerId, absl::Time> timer_times_ ABSL_GUARDED_BY(mu_);
  TimerId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  // Written by the thread entering and leaving Run, read by any thread.
  std::atomic<std::thread::id> owner_{};
  // The thread that last entered Run or RunUntilIdle; kept when it leaves.
  std::atomic<std::thread::id> runner_{};
};

namespace internal {
// Reports a loop-owned function called off its loop's thread, and aborts.
[[noreturn]] void OffLoopThread(const char* function, const char* file,
                                int line);
}  // namespace internal

}  // namespace herald::runtime

// The loop's contract, enforced: state owned by a component that runs on an
// EventLoop is touched on that loop's thread only (other threads Post to
// it). Put at the top of each entry point of a loop-owned class; called
// from any other thread it aborts, naming the function and where it was
// checked. On in every build, not only debug ones: the check is one atomic
// load and a thread-id compare (tests/bench/cc/micro_benchmarks.cc
// BM_DispatcherRoundTrip, which passes several checks per delivery, takes
// about 2.1 us of CPU with or without them, within 3%), and a contract
// broken in production is a data race, far dearer to find afterwards.
#define HERALD_ASSERT_ON_LOOP(loop)                                   \
  do {                                                                \
    if (!(loop)->IsThreadSafe()) {                                    \
      ::herald::runtime::internal::OffLoopThread(__PRETTY_FUNCTION__, \
                                                 __FILE__, __LINE__); \
    }                                                                 \
  } while (false)

#endif  // HERALD_SERVER_RUNTIME_EVENT_LOOP_H_
