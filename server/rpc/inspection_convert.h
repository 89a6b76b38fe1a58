// The engine's inspection snapshots (server/engine/inspection.h) as the
// messages of herald.v1.InspectionService. Pure conversions: no engine, no
// gRPC server.
#ifndef HERALD_SERVER_RPC_INSPECTION_CONVERT_H_
#define HERALD_SERVER_RPC_INSPECTION_CONVERT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "google/protobuf/repeated_ptr_field.h"
#include "herald/v1/inspection.pb.h"
#include "server/engine/inspection.h"
#include "server/rpc/object_filter.h"

namespace herald::rpc {

void FillRef(const kube::ResourceInfo& r, v1::ResourceRef* out);

// A progress record's purpose as a cause; unspecified when unknown.
v1::Cause PurposeCause(const std::string& purpose);

v1::GetStatusResponse ToProto(const engine::StatusSnapshot& s);
// A watch that is not watching yet names its resource by the name it was
// asked for (in `plural`); its state says why.
void ToProto(const engine::ResourceSnapshot& s, v1::WatchedResource* out);
void ToProto(const engine::HandlerSnapshot& s, v1::HandlerInfo* out);
void ToProto(const engine::ProcessSnapshot& s, v1::ProcessInfo* out);
void ToProto(const engine::QueueSnapshot& s, v1::ObjectQueue* out);
void ToProto(const engine::TimerSnapshot& s, v1::ScheduledTimer* out);
void ToProto(const engine::DaemonSnapshot& s, v1::DaemonInfo* out);
void ToProto(const engine::ProgressSnapshot& s, v1::HandlerProgress* out);
void ToProto(const engine::IndexSnapshot::Entry& s, v1::IndexEntry* out);

// Adds the snapshots that pass `filter`, at most `limit` of them (0 for
// 500), to `out`; returns how many passed, including those beyond the
// limit.
template <typename Snapshot, typename Message>
uint32_t AddMatching(const std::vector<Snapshot>& all,
                     const v1::ObjectFilter& filter, uint32_t limit,
                     google::protobuf::RepeatedPtrField<Message>* out) {
  limit = LimitOf(limit);
  uint32_t total = 0;
  for (const Snapshot& s : all) {
    if (!FilterMatches(filter, s.resource, s.key)) continue;
    if (total++ >= limit) continue;
    ToProto(s, out->Add());
  }
  return total;
}

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_INSPECTION_CONVERT_H_
