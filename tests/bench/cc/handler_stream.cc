#include "tests/bench/cc/handler_stream.h"

#include <time.h>

#include "absl/strings/str_cat.h"
#include "tests/bench/cc/sent_ns.h"

namespace herald::bench {
namespace {

void SleepMicros(int64_t us) {
  timespec ts{static_cast<time_t>(us / 1000000),
              static_cast<long>(us % 1000000 * 1000)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

void OnProtocolError(const v1::ProtocolError& e, HandlerStats* stats,
                     std::ostream& log) {
  stats->OnProtocolError(e.delivery_id());
  // Only the first few: a broken run must not flood the log.
  constexpr uint64_t kLogged = 20;
  const uint64_t count = stats->protocol_errors();
  if (count > kLogged) return;
  log << "bench_handler: protocol error "
      << v1::ProtocolErrorCode_Name(e.code())
      << (e.delivery_id().empty() ? "" : absl::StrCat(" on ", e.delivery_id()))
      << ": " << e.message()
      << (count == kLogged ? " (further protocol errors not logged)" : "")
      << std::endl;
}

// Reads until Registered; true when the handler was accepted.
bool AwaitRegistered(
    grpc::ClientReaderWriterInterface<v1::ConnectRequest, v1::ConnectResponse>&
        stream,
    const StreamOptions& opt, HandlerStats* stats, std::ostream& log,
    bool* rejected) {
  v1::ConnectResponse in;
  while (stream.Read(&in)) {
    if (in.has_protocol_error()) {
      OnProtocolError(in.protocol_error(), stats, log);
      continue;
    }
    if (!in.has_registered()) continue;
    const v1::Registered& r = in.registered();
    bool accepted = false;
    for (const auto& id : r.accepted_handler_ids()) {
      accepted = accepted || id == opt.handler.handler_id;
    }
    for (const auto& rej : r.rejections()) {
      log << "bench_handler: handler '" << rej.handler_id()
          << "' rejected: " << rej.reason() << std::endl;
    }
    if (!accepted || r.rejections_size() > 0) {
      log << "bench_handler: handler '" << opt.handler.handler_id
          << "' not accepted" << std::endl;
      *rejected = true;
      return false;
    }
    log << "bench_handler: registered as " << r.stream_id() << " (sidecar "
        << r.sidecar_version() << ")" << std::endl;
    return true;
  }
  return false;
}

}  // namespace

StreamResult ServeHandlerStream(v1::HandlerService::StubInterface& stub,
                                grpc::ClientContext* context,
                                const StreamOptions& opt, HandlerStats* stats,
                                std::ostream& log) {
  auto stream = stub.Connect(context);
  bool rejected = false;
  if (!stream->Write(BuildRegister(opt.handler)) ||
      !AwaitRegistered(*stream, opt, stats, log, &rejected)) {
    if (rejected) context->TryCancel();
    grpc::Status st = stream->Finish();
    return {rejected ? StreamEnd::kRejected : StreamEnd::kEnded, st};
  }

  // One message each way, reused: only the outcome's delivery id changes,
  // and reading into the same response keeps its buffers.
  v1::ConnectResponse in;
  v1::ConnectRequest out;
  v1::Outcome* outcome = out.mutable_outcome();
  outcome->set_status(v1::OUTCOME_STATUS_SUCCESS);
  if (!opt.status_patch_json.empty()) {
    outcome->mutable_changes()->set_status_patch_json(opt.status_patch_json);
  }
  bool open = true;
  bool done = false;
  while (open && !done && stream->Read(&in)) {
    switch (in.message_case()) {
      case v1::ConnectResponse::kDelivery: {
        const v1::Delivery& d = in.delivery();
        const int64_t received = RealtimeNs();
        const absl::optional<int64_t> e2h =
            stats->OnDelivery(received, FindSentNs(d.body_json()));
        if (opt.stall) break;
        if (opt.delay_us > 0) SleepMicros(opt.delay_us);
        outcome->set_delivery_id(d.delivery_id());
        stats->OnOutcomeSent(d.delivery_id(), MonotonicNs(), e2h);
        open = stream->Write(out);
        break;
      }
      case v1::ConnectResponse::kOutcomeAck: {
        const int64_t now = MonotonicNs();
        stats->OnAck(in.outcome_ack().delivery_id(), now, RealtimeNs());
        done = opt.exit_after > 0 && stats->acks() >= opt.exit_after;
        break;
      }
      case v1::ConnectResponse::kProtocolError:
        OnProtocolError(in.protocol_error(), stats, log);
        break;
      case v1::ConnectResponse::kStop:
        stats->OnStop();
        break;
      default:
        break;
    }
  }
  if (done || !open) context->TryCancel();
  grpc::Status st = stream->Finish();
  return {done ? StreamEnd::kExitAfter : StreamEnd::kEnded, st};
}

}  // namespace herald::bench
