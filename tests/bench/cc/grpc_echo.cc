// grpc_echo: the bare gRPC floor for Herald's handler stream (P2, P3): the
// same kind of bidi stream over a Unix socket, no Herald in between.
//
//   grpc_echo server --socket=/tmp/echo.sock
//   grpc_echo client --target=unix:///tmp/echo.sock --mode=pingpong|pipelined
//       --size=2048 --count=N [--inflight=64] --stats=/path/stats.json
//
// The server is built like the sidecar's handler service (callback API, one
// write at a time from a queue); the client like bench_handler (synchronous
// calls on one thread), so the comparison shares both ends' costs.
#include <unistd.h>

#include <cstdio>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "tests/bench/cc/echo.grpc.pb.h"
#include "tests/bench/cc/samples.h"
#include "tests/bench/cc/sent_ns.h"

ABSL_FLAG(std::string, socket, "/tmp/echo.sock", "server: the Unix socket.");
ABSL_FLAG(std::string, target, "unix:///tmp/echo.sock",
          "client: the server (a gRPC target).");
ABSL_FLAG(std::string, mode, "pingpong", "client: pingpong or pipelined.");
ABSL_FLAG(int64_t, size, 2048, "client: payload bytes per message.");
ABSL_FLAG(int64_t, count, 10000, "client: messages measured.");
ABSL_FLAG(int64_t, inflight, 64, "client, pipelined: messages outstanding.");
ABSL_FLAG(int64_t, warmup, 100,
          "client: messages exchanged first and not measured.");
ABSL_FLAG(std::string, stats, "", "client: where to write the stats JSON.");

namespace herald::bench {
namespace {

using v1::EchoMessage;

// Echoes one stream. Reads continuously; responses queue and go out one
// write at a time, as in the sidecar's handler service.
class EchoReactor : public grpc::ServerBidiReactor<EchoMessage, EchoMessage> {
 public:
  EchoReactor() { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::lock_guard<std::mutex> lock(mu_);
      reading_done_ = true;
      MaybeFinishLocked();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      out_.emplace_back();
      out_.back().Swap(&request_);
      if (!writing_) {
        writing_ = true;
        StartWrite(&out_.front());
      }
    }
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    out_.pop_front();
    if (ok && !out_.empty()) {
      StartWrite(&out_.front());
      return;
    }
    if (!ok) out_.clear();
    writing_ = false;
    MaybeFinishLocked();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    reading_done_ = true;
    MaybeFinishLocked();
  }

  void OnDone() override { delete this; }

 private:
  void MaybeFinishLocked() {
    if (reading_done_ && !writing_ && !finished_) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }

  EchoMessage request_;
  std::mutex mu_;
  std::deque<EchoMessage> out_;
  bool writing_ = false;
  bool reading_done_ = false;
  bool finished_ = false;
};

class EchoService : public v1::EchoService::CallbackService {
  grpc::ServerBidiReactor<EchoMessage, EchoMessage>* Echo(
      grpc::CallbackServerContext* context) override {
    return new EchoReactor();
  }
};

int Serve() {
  const std::string socket = absl::GetFlag(FLAGS_socket);
  ::unlink(socket.c_str());  // A stale socket from a previous run.
  EchoService service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket, grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(-1);
  builder.SetMaxSendMessageSize(-1);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::cerr << "grpc_echo: cannot listen on unix:" << socket << std::endl;
    return 1;
  }
  std::cerr << "grpc_echo: listening on unix:" << socket << std::endl;
  server->Wait();
  return 0;
}

int Fail(const std::string& message) {
  std::cerr << "grpc_echo: " << message << std::endl;
  return 1;
}

int Client() {
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const int64_t size = absl::GetFlag(FLAGS_size);
  const int64_t count = absl::GetFlag(FLAGS_count);
  const int64_t inflight = absl::GetFlag(FLAGS_inflight);
  const int64_t warmup = absl::GetFlag(FLAGS_warmup);
  const std::string stats_path = absl::GetFlag(FLAGS_stats);
  if (mode != "pingpong" && mode != "pipelined") {
    return Fail(absl::StrCat("unknown --mode '", mode, "'"));
  }
  if (size < 0 || count < 1 || inflight < 1 || warmup < 0) {
    return Fail("--size, --warmup >= 0 and --count, --inflight >= 1");
  }

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  auto channel = grpc::CreateCustomChannel(
      absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(
          gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                       gpr_time_from_seconds(60, GPR_TIMESPAN)))) {
    return Fail(
        absl::StrCat("cannot connect to ", absl::GetFlag(FLAGS_target)));
  }
  auto stub = v1::EchoService::NewStub(channel);
  grpc::ClientContext context;
  auto stream = stub->Echo(&context);

  EchoMessage out;
  out.set_payload(std::string(size, 'x'));
  EchoMessage in;
  uint64_t seq = 0;
  auto exchange = [&]() {
    out.set_seq(seq++);
    return stream->Write(out) && stream->Read(&in) && in.seq() == out.seq();
  };
  for (int64_t i = 0; i < warmup; ++i) {
    if (!exchange()) return Fail("the stream broke during warmup");
  }

  std::string json;
  if (mode == "pingpong") {
    Samples round_trips;
    for (int64_t i = 0; i < count; ++i) {
      const int64_t t0 = MonotonicNs();
      if (!exchange()) return Fail("the stream broke");
      round_trips.Add(MonotonicNs() - t0);
    }
    json = "{\"round_trip_us\": ";
    AppendMicrosArray(round_trips.ns(), &json);
    json += "}\n";
  } else {
    int64_t sent = 0;
    int64_t received = 0;
    const int64_t t0 = MonotonicNs();
    for (; sent < inflight && sent < count; ++sent) {
      out.set_seq(seq++);
      if (!stream->Write(out)) return Fail("the stream broke");
    }
    while (received < count) {
      if (!stream->Read(&in)) return Fail("the stream broke");
      ++received;
      if (sent < count) {
        out.set_seq(seq++);
        if (!stream->Write(out)) return Fail("the stream broke");
        ++sent;
      }
    }
    const double seconds = (MonotonicNs() - t0) / 1e9;
    json =
        absl::StrCat("{\"messages\": ", received, ", \"seconds\": ", seconds,
                     ", \"per_second\": ", received / seconds,
                     ", \"size\": ", size, ", \"inflight\": ", inflight, "}\n");
  }
  stream->WritesDone();
  grpc::Status st = stream->Finish();
  if (!st.ok()) return Fail(absl::StrCat("stream ended: ", st.error_message()));
  if (stats_path.empty()) {
    std::cout << json;
  } else {
    absl::Status written = WriteFileAtomically(stats_path, json);
    if (!written.ok()) return Fail(std::string(written.message()));
  }
  return 0;
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "A bare gRPC bidi echo over a Unix socket.\n"
      "  grpc_echo server --socket=PATH\n"
      "  grpc_echo client --target=unix://PATH --mode=pingpong|pipelined "
      "--size=N --count=N [--inflight=N] --stats=PATH");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  const std::string command = rest.size() > 1 ? rest[1] : "";
  if (command == "server") return herald::bench::Serve();
  if (command == "client") return herald::bench::Client();
  std::cerr << "grpc_echo: say 'server' or 'client' (see --help)" << std::endl;
  return 2;
}
