#include "server/engine/activities.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/engine/outcomes.h"
#include "server/runtime/logging.h"

namespace herald::engine {

Activities::Activities(runtime::EventLoop* loop, Registry* registry,
                       Dispatcher* dispatcher, Processor* processor,
                       std::function<void(const std::string&)> on_fatal)
    : loop_(loop),
      registry_(registry),
      dispatcher_(dispatcher),
      processor_(processor),
      on_fatal_(std::move(on_fatal)) {}

OutcomeStatus Activities::Count(const Handler& h, OutcomeStatus status) {
  HERALD_ASSERT_ON_LOOP(loop_);
  status = ApplyErrorsMode(status, h.spec.errors);
  processor_->stats_of(h.id()).Count(status);
  return status;
}

Delivery Activities::NewDelivery(const Handler& h, Cause cause) {
  processor_->stats_of(h.id()).deliveries++;
  Delivery d;
  d.id = dispatcher_->NewDeliveryId();
  d.handler_id = h.id();
  d.cause = cause;
  d.memo_json = processor_->operator_memo().dump();
  return d;
}

void Activities::RunStartup(std::vector<std::string> ids,
                            std::function<void()> then) {
  HERALD_ASSERT_ON_LOOP(loop_);
  RunStartupStep(std::move(ids), 0, 0, loop_->clock()->Now(), std::move(then));
}

void Activities::RunStartupStep(std::vector<std::string> ids, size_t next,
                                uint32_t retry, absl::Time started,
                                std::function<void()> then) {
  if (next >= ids.size()) {
    then();
    return;
  }
  const Handler* h = registry_->Find(ids[next]);
  if (h == nullptr || startup_done_.count(ids[next])) {
    RunStartupStep(std::move(ids), next + 1, 0, loop_->clock()->Now(),
                   std::move(then));
    return;
  }
  const absl::Time now = loop_->clock()->Now();
  auto fatal = [this, h](const std::string& why) {
    const std::string message =
        absl::StrCat("startup handler '", h->id(), "' failed: ", why);
    HERALD_LOG(ERROR, "engine").WithHandler(h->id()) << message;
    if (on_fatal_) on_fatal_(message);
  };
  if (h->spec.retries && retry >= *h->spec.retries) {
    fatal(absl::StrCat("exceeded the retries limit (", *h->spec.retries, ")"));
    return;
  }
  if (h->spec.timeout && now - started >= *h->spec.timeout) {
    fatal("timed out");
    return;
  }
  Delivery d = NewDelivery(*h, Cause::kStartup);
  d.retry = retry;
  d.started = started;
  HERALD_LOG(INFO, "engine").WithHandler(h->id())
      << "running startup handler '" << h->id() << "'";
  dispatcher_->Submit(std::move(d), [this, h, ids, next, retry, started, then,
                                     fatal](const Outcome& outcome, StreamId) {
    OutcomeStatus status = outcome.status;
    const absl::Status& bad = outcome.malformed;
    if (!bad.ok()) status = OutcomeStatus::kUnexpectedError;
    status = Count(*h, status);
    if (status == OutcomeStatus::kSuccess ||
        status == OutcomeStatus::kSkipped) {
      if (bad.ok()) {
        processor_->operator_memo().merge_patch(outcome.changes.memo_patch);
      }
      startup_done_.insert(h->id());
      HERALD_LOG(INFO, "engine").WithHandler(h->id())
          << "startup handler '" << h->id() << "' succeeded";
      loop_->Post([this, ids, next, then] {
        RunStartupStep(ids, next + 1, 0, loop_->clock()->Now(), then);
      });
    } else if (status == OutcomeStatus::kPermanentError) {
      fatal(outcome.message.empty() ? "permanent error" : outcome.message);
    } else {
      const absl::Duration delay = outcome.delay.value_or(h->backoff());
      HERALD_LOG(WARNING, "engine").WithHandler(h->id())
          << "startup handler '" << h->id() << "' failed: " << outcome.message
          << "; retrying in " << absl::FormatDuration(delay);
      loop_->PostAt(loop_->clock()->Now() + delay,
                    [this, ids, next, retry, started, then] {
                      RunStartupStep(ids, next, retry + 1, started, then);
                    });
    }
    return bad;
  });
}

int Activities::RunCleanups(std::function<void()> done) {
  HERALD_ASSERT_ON_LOOP(loop_);
  auto pending = std::make_shared<int>(0);
  auto finish = std::make_shared<std::function<void()>>(std::move(done));
  for (const Handler* h : registry_->All()) {
    if (h->cause() != Cause::kCleanup) continue;
    if (!dispatcher_->HasStreamFor(h->id())) {
      HERALD_LOG(WARNING, "engine").WithHandler(h->id())
          << "cleanup handler '" << h->id()
          << "': no process serves it; skipped";
      continue;
    }
    ++*pending;
    HERALD_LOG(INFO, "engine").WithHandler(h->id())
        << "running cleanup handler '" << h->id() << "'";
    dispatcher_->Submit(NewDelivery(*h, Cause::kCleanup),
                        [this, pending, finish, h](const Outcome& o, StreamId) {
                          Count(*h, o.status);
                          if (o.status != OutcomeStatus::kSuccess) {
                            HERALD_LOG(WARNING, "engine").WithHandler(h->id())
                                << "cleanup handler '" << h->id()
                                << "' failed: " << o.message;
                          }
                          if (--*pending == 0) (*finish)();
                          return absl::OkStatus();
                        });
  }
  const int delivered = *pending;
  if (delivered == 0) (*finish)();
  return delivered;
}

void Activities::RunProbes(const std::shared_ptr<ProbeRun>& run,
                           std::function<void()> answered) {
  HERALD_ASSERT_ON_LOOP(loop_);
  auto finish = std::make_shared<std::function<void()>>(std::move(answered));
  for (const Handler* h : registry_->All()) {
    if (h->cause() != Cause::kProbe) continue;
    if (!dispatcher_->HasStreamFor(h->id())) {
      run->results[h->id()] = {{"error", "no process serves it"}};
      run->ok = false;
      continue;
    }
    ++run->pending;
    Delivery d = NewDelivery(*h, Cause::kProbe);
    run->delivery_ids.push_back(d.id);
    dispatcher_->Submit(std::move(d),
                        [this, run, finish, h](const Outcome& o, StreamId) {
                          Count(*h, o.status);
                          if (o.status == OutcomeStatus::kSuccess) {
                            run->results[h->id()] = o.result;
                          } else {
                            run->results[h->id()] = {{"error", o.message}};
                            run->ok = false;
                          }
                          if (--run->pending == 0) (*finish)();
                          return absl::OkStatus();
                        });
  }
  if (run->pending == 0) (*finish)();
}

void Activities::AbandonProbes(ProbeRun& run, absl::Duration wait) {
  HERALD_ASSERT_ON_LOOP(loop_);
  if (run.pending == 0) return;
  for (const auto& id : run.delivery_ids) dispatcher_->Cancel(id);
  for (const Handler* h : registry_->All()) {
    if (h->cause() == Cause::kProbe && !run.results.contains(h->id())) {
      run.results[h->id()] = {
          {"error",
           absl::StrCat("no answer within ", absl::FormatDuration(wait))}};
    }
  }
  run.ok = false;
  run.pending = 0;
}

}  // namespace herald::engine
