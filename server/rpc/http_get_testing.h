// Plain-socket HTTP for tests of the sidecar's HTTP endpoints.
#ifndef HERALD_SERVER_RPC_HTTP_GET_TESTING_H_
#define HERALD_SERVER_RPC_HTTP_GET_TESTING_H_

#include <string>

namespace herald::rpc::testing {

// A socket connected to 127.0.0.1:port, or -1.
int ConnectLoopback(int port);

// One HTTP/1.1 GET on 127.0.0.1:port: the whole answer, status line and
// headers included; empty when nothing listens.
std::string HttpGet(int port, const std::string& path);

}  // namespace herald::rpc::testing

#endif  // HERALD_SERVER_RPC_HTTP_GET_TESTING_H_
