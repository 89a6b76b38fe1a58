#include "server/runtime/event_loop.h"

namespace herald::runtime {

void EventLoop::Post(Task task) {
  absl::MutexLock lock(&mu_);
  tasks_.push_back(std::move(task));
}

EventLoop::TimerId EventLoop::PostAt(absl::Time when, Task task) {
  absl::MutexLock lock(&mu_);
  TimerId id = next_id_++;
  timers_.emplace(std::make_pair(when, id), std::move(task));
  timer_times_.emplace(id, when);
  return id;
}

void EventLoop::Cancel(TimerId id) {
  absl::MutexLock lock(&mu_);
  auto it = timer_times_.find(id);
  if (it == timer_times_.end()) return;
  timers_.erase(std::make_pair(it->second, id));
  timer_times_.erase(it);
}

void EventLoop::Stop() {
  absl::MutexLock lock(&mu_);
  stopped_ = true;
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
  owner_ = std::this_thread::get_id();
  for (;;) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      for (;;) {
        if (stopped_) return;
        if (TakeReady(clock_->Now(), &task)) break;
        // Wake for a new task, Stop, or the next timer.
        absl::Time deadline = timers_.empty() ? absl::Now() + absl::Seconds(1)
                                              : timers_.begin()->first.first;
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopped_ || !tasks_.empty();
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
  owner_ = std::this_thread::get_id();
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
