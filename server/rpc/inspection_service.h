// herald.v1.InspectionService: read-only views of the sidecar's state for
// grpcurl. The gRPC surface only: each call asks the engine for a snapshot
// (server/engine/inspection.h) and converts it (inspection_convert.h);
// ListObjects and GetObject read the object caches without the engine loop
// (cached_objects.h); WatchDeliveries is delivery_stream.h. Calls wait on
// their gRPC thread; once the engine has stopped they answer UNAVAILABLE.
#ifndef HERALD_SERVER_RPC_INSPECTION_SERVICE_H_
#define HERALD_SERVER_RPC_INSPECTION_SERVICE_H_

#include "herald/v1/inspection.grpc.pb.h"
#include "server/engine/engine.h"

namespace herald::rpc {

class InspectionService final : public v1::InspectionService::CallbackService {
 public:
  explicit InspectionService(engine::Engine* engine) : engine_(engine) {}

  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const v1::GetStatusRequest* request,
                                      v1::GetStatusResponse* response) override;
  grpc::ServerUnaryReactor* ListResources(
      grpc::CallbackServerContext* context,
      const v1::ListResourcesRequest* request,
      v1::ListResourcesResponse* response) override;
  grpc::ServerUnaryReactor* ListObjects(
      grpc::CallbackServerContext* context,
      const v1::ListObjectsRequest* request,
      v1::ListObjectsResponse* response) override;
  grpc::ServerUnaryReactor* GetObject(grpc::CallbackServerContext* context,
                                      const v1::GetObjectRequest* request,
                                      v1::GetObjectResponse* response) override;
  grpc::ServerUnaryReactor* ListHandlers(
      grpc::CallbackServerContext* context,
      const v1::ListHandlersRequest* request,
      v1::ListHandlersResponse* response) override;
  grpc::ServerUnaryReactor* ListProcesses(
      grpc::CallbackServerContext* context,
      const v1::ListProcessesRequest* request,
      v1::ListProcessesResponse* response) override;
  grpc::ServerUnaryReactor* GetIndex(grpc::CallbackServerContext* context,
                                     const v1::GetIndexRequest* request,
                                     v1::GetIndexResponse* response) override;
  grpc::ServerUnaryReactor* ListQueues(
      grpc::CallbackServerContext* context,
      const v1::ListQueuesRequest* request,
      v1::ListQueuesResponse* response) override;
  grpc::ServerUnaryReactor* ListTimers(
      grpc::CallbackServerContext* context,
      const v1::ListTimersRequest* request,
      v1::ListTimersResponse* response) override;
  grpc::ServerUnaryReactor* ListDaemons(
      grpc::CallbackServerContext* context,
      const v1::ListDaemonsRequest* request,
      v1::ListDaemonsResponse* response) override;
  grpc::ServerWriteReactor<v1::WatchDeliveriesResponse>* WatchDeliveries(
      grpc::CallbackServerContext* context,
      const v1::WatchDeliveriesRequest* request) override;

 private:
  engine::Engine* engine_;
};

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_INSPECTION_SERVICE_H_
