// bench_handler: a minimal handler process for Herald's benchmarks. It
// speaks herald.v1.HandlerService directly: registers one handler, answers
// every delivery with OUTCOME_STATUS_SUCCESS, and measures the deliveries'
// latencies (see tests/bench/README.md for the contract).
//
// One thread reads the stream and answers with synchronous writes: no thread
// hop per message, and the least CPU taken from the sidecar on a small
// machine. A second thread only waits for SIGTERM/SIGINT and cancels the
// call; the reading thread then writes the stats and exits.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/grpcpp.h"
#include "herald/v1/handler.grpc.pb.h"
#include "tests/bench/cc/handler_config.h"
#include "tests/bench/cc/handler_stats.h"
#include "tests/bench/cc/handler_stream.h"
#include "tests/bench/cc/samples.h"
#include "tests/bench/cc/sent_ns.h"

ABSL_FLAG(std::string, target, "unix:///tmp/herald.sock",
          "The sidecar's handler endpoint (a gRPC target).");
ABSL_FLAG(std::string, resource, "", "The resource the handler serves.");
ABSL_FLAG(std::string, handler_id, "bench", "The handler's id.");
ABSL_FLAG(std::string, cause, "event", "event, create, update or resume.");
ABSL_FLAG(std::vector<std::string>, label, {},
          "KEY=VALUE label filters (EQUALS); repeatable, or a comma list.");
ABSL_FLAG(uint32_t, credits, 64, "Deliveries held unanswered at most.");
ABSL_FLAG(std::string, status_patch_json, "",
          "A status merge patch sent with every outcome; empty: none.");
ABSL_FLAG(bool, stall, false, "Never answer a delivery.");
ABSL_FLAG(int64_t, delay_us, 0,
          "Time spent on each delivery before answering.");
ABSL_FLAG(uint64_t, exit_after, 0,
          "Write the stats and exit after this many acks; 0: run until "
          "SIGTERM/SIGINT.");
ABSL_FLAG(std::string, stats, "", "Where to write the stats JSON.");
ABSL_FLAG(std::string, process_name, "",
          "The process name sent at registration; default bench_handler/PID.");
ABSL_FLAG(int, connect_timeout_s, 60,
          "How long to wait for the sidecar's socket at start.");

namespace herald::bench {
namespace {

std::atomic<bool> stop_requested{false};

struct Options {
  StreamOptions stream;
  std::string target;
  std::string stats_path;
  int connect_timeout_s = 60;
};

// Writes the stats (if asked) and ends the process without running
// destructors: gRPC's threads may still hold the call.
[[noreturn]] void Exit(const Options& opt, const HandlerStats& stats,
                       int code) {
  if (!opt.stats_path.empty()) {
    absl::Status st = WriteFileAtomically(opt.stats_path, stats.ToJson());
    if (!st.ok()) {
      std::cerr << "bench_handler: " << st.message() << std::endl;
      code = 1;
    }
  }
  std::cerr << "bench_handler: " << stats.deliveries() << " deliveries, "
            << stats.acks() << " acks, " << stats.protocol_errors()
            << " protocol errors" << std::endl;
  std::fflush(nullptr);
  _exit(code);
}

int Run(const Options& opt) {
  // Signals go to the waiting thread only; threads started later (gRPC's)
  // inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  HandlerStats stats;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  auto channel = grpc::CreateCustomChannel(
      opt.target, grpc::InsecureChannelCredentials(), args);
  auto stub = v1::HandlerService::NewStub(channel);
  // Not destroyed: the process ends with _exit.
  auto* context = new grpc::ClientContext();
  context->set_wait_for_ready(true);

  std::thread([signals, context] {
    int sig = 0;
    sigwait(&signals, &sig);
    stop_requested.store(true);
    context->TryCancel();
  }).detach();

  // The sidecar may start after this process: wait for its socket, in short
  // steps so that a signal still stops the wait.
  const int64_t give_up = MonotonicNs() + opt.connect_timeout_s * 1000000000LL;
  while (!channel->WaitForConnected(gpr_time_add(
      gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(100, GPR_TIMESPAN)))) {
    if (stop_requested.load()) Exit(opt, stats, 0);
    if (MonotonicNs() > give_up) {
      std::cerr << "bench_handler: cannot connect to " << opt.target
                << " within " << opt.connect_timeout_s << " s" << std::endl;
      return 1;
    }
  }

  StreamResult r =
      ServeHandlerStream(*stub, context, opt.stream, &stats, std::cerr);
  if (stop_requested.load()) Exit(opt, stats, 0);
  switch (r.end) {
    case StreamEnd::kExitAfter:
      Exit(opt, stats, 0);
    case StreamEnd::kRejected:
      return 1;
    case StreamEnd::kEnded:
      break;
  }
  std::cerr << "bench_handler: the stream ended: "
            << (r.status.ok() ? "OK" : r.status.error_message()) << std::endl;
  Exit(opt, stats, 1);
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) {
  using herald::bench::Options;
  absl::SetProgramUsageMessage(
      "A C++ Herald handler for benchmarks: answers every delivery and "
      "records latencies.");
  // --label may be repeated; Abseil would keep only the last one.
  std::vector<std::string> labels =
      herald::bench::TakeRepeatedFlag("label", &argc, argv);
  absl::ParseCommandLine(argc, argv);

  Options opt;
  opt.target = absl::GetFlag(FLAGS_target);
  opt.stream.handler.resource = absl::GetFlag(FLAGS_resource);
  opt.stream.handler.handler_id = absl::GetFlag(FLAGS_handler_id);
  opt.stream.handler.credits = absl::GetFlag(FLAGS_credits);
  opt.stream.handler.process_name = absl::GetFlag(FLAGS_process_name);
  if (opt.stream.handler.process_name.empty()) {
    opt.stream.handler.process_name = absl::StrCat("bench_handler/", getpid());
  }
  auto cause = herald::bench::ParseCause(absl::GetFlag(FLAGS_cause));
  auto parsed_labels = herald::bench::ParseLabels(labels);
  if (!cause.ok() || !parsed_labels.ok()) {
    std::cerr
        << "bench_handler: "
        << (!cause.ok() ? cause.status() : parsed_labels.status()).message()
        << std::endl;
    return 2;
  }
  if (opt.stream.handler.resource.empty()) {
    std::cerr << "bench_handler: --resource is required" << std::endl;
    return 2;
  }
  opt.stream.handler.cause = *cause;
  opt.stream.handler.labels = *std::move(parsed_labels);
  opt.stream.status_patch_json = absl::GetFlag(FLAGS_status_patch_json);
  opt.stream.stall = absl::GetFlag(FLAGS_stall);
  opt.stream.delay_us = absl::GetFlag(FLAGS_delay_us);
  opt.stream.exit_after = absl::GetFlag(FLAGS_exit_after);
  opt.stats_path = absl::GetFlag(FLAGS_stats);
  opt.connect_timeout_s = absl::GetFlag(FLAGS_connect_timeout_s);
  return herald::bench::Run(opt);
}
