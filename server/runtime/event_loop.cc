#include "server/runtime/event_loop.h"

#include <cstdio>
#include <cstdlib>

namespace herald::runtime {

namespace internal {
void OffLoopThread(const char* function, const char* file, int line) {
  std::fprintf(stderr,
               "FATAL %s:%d: %s called off its event loop's thread: state "
               "owned by a loop is touched only by tasks on that loop (Post "
               "to it from other threads)\n",
               file, line, function);
  std::fflush(stderr);
  std::abort();
}
}  // namespace internal

class EventLoop::Owner {
 public:
  explicit Owner(EventLoop* loop) : loop_(loop) {
    loop_->runner_.store(std::this_thread::get_id(), std::memory_order_release);
    previous_ = loop_->owner_.exchange(std::this_thread::get_id(),
                                       std::memory_order_acq_rel);
  }
  ~Owner() { loop_->owner_.store(previous_, std::memory_order_release); }

 private:
  EventLoop* loop_;
  std::thread::id previous_;
};

bool EventLoop::Post(Task task) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopped_) {
      tasks_.push_back(std::move(task));
      return true;
    }
  }
  // Refused: `task` goes now, outside the lock (what it holds may run code
  // of its own when destroyed).
  task = nullptr;
  return false;
}

EventLoop::TimerId EventLoop::PostAt(absl::Time when, Task task) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopped_) {
      TimerId id = next_id_++;
      timers_.emplace(std::make_pair(when, id), std::move(task));
      timer_times_.emplace(id, when);
      return id;
    }
  }
  task = nullptr;  // Refused, as in Post.
  return 0;
}

void EventLoop::Cancel(TimerId id) {
  absl::MutexLock lock(&mu_);
  auto it = timer_times_.find(id);
  if (it == timer_times_.end()) return;
  timers_.erase(std::make_pair(it->second, id));
  timer_times_.erase(it);
}

void EventLoop::Stop() {
  std::deque<Task> tasks;
  std::map<std::pair<absl::Time, TimerId>, Task> timers;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    tasks.swap(tasks_);
    timers.swap(timers_);
    timer_times_.clear();
  }
  // `tasks` and `timers` are destroyed here, outside the lock.
}

bool EventLoop::stopped() const {
  absl::MutexLock lock(&mu_);
  return stopped_;
}

absl::Time EventLoop::NextTimer() {
  absl::MutexLock lock(&mu_);
  return timers_.empty() ? absl::InfiniteFuture()
                         : timers_.begin()->first.first;
}

bool EventLoop::TakeReady(absl::Time now, Task* out) {
  if (!tasks_.empty()) {
    *out = std::move(tasks_.front());
    tasks_.pop_front();
    return true;
  }
  if (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto it = timers_.begin();
    timer_times_.erase(it->first.second);
    *out = std::move(it->second);
    timers_.erase(it);
    return true;
  }
  return false;
}

void EventLoop::Run() {
  Owner owner(this);
  for (;;) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      for (;;) {
        if (stopped_) return;
        if (TakeReady(clock_->Now(), &task)) break;
        // Wake for a new task, Stop, the next timer, or a timer posted
        // meanwhile that is due before it.
        const bool timer = !timers_.empty();
        absl::Time deadline = timer ? timers_.begin()->first.first
                                    : clock_->Now() + absl::Seconds(1);
        auto ready = [this, timer,
                      deadline]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopped_ || !tasks_.empty() ||
                 (!timers_.empty() &&
                  (!timer || timers_.begin()->first.first < deadline));
        };
        absl::Duration wait = deadline - clock_->Now();
        if (wait > absl::ZeroDuration()) {
          mu_.AwaitWithTimeout(absl::Condition(&ready), wait);
        }
      }
    }
    task();
  }
}

size_t EventLoop::RunUntilIdle() {
  Owner owner(this);
  size_t n = 0;
  for (;;) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      if (!TakeReady(clock_->Now(), &task)) return n;
    }
    task();
    ++n;
  }
}

}  // namespace herald::runtime
