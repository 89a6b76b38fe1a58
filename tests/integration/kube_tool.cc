// A command-line driver of Herald's Kubernetes layer (server/kube) for the
// integration tests: every write goes through the same ApiClient, discovery
// and Event code the sidecar uses.
//
//   kube_tool get    RESOURCE NAMESPACE NAME
//   kube_tool patch  RESOURCE NAMESPACE NAME merge|json|status PATCH
//   kube_tool create RESOURCE NAMESPACE BODY
//   kube_tool delete RESOURCE NAMESPACE NAME
//   kube_tool event  RESOURCE NAMESPACE NAME Normal|Warning REASON MESSAGE
//
// The kubeconfig comes from $KUBECONFIG. Prints the API server's answer on
// stdout; on failure prints the error on stderr and exits 1.

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/kube/api_client.h"
#include "server/kube/beast_http_client.h"
#include "server/kube/cluster_config.h"
#include "server/kube/discovery.h"
#include "server/kube/events.h"

namespace {

int Usage() {
  std::fprintf(stderr, "usage: see the comment at the top of kube_tool.cc\n");
  return 2;
}

int Report(const absl::StatusOr<std::string>& r) {
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", std::string(r.status().message()).c_str());
    return 1;
  }
  std::printf("%s\n", r->c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return Usage();
  const std::string cmd = argv[1], resource = argv[2], ns = argv[3];
  auto config = herald::kube::ResolveClusterConfig("", "");
  if (!config.ok()) return Report(config.status());
  auto http = herald::kube::NewBeastHttpClient(*config);
  if (!http.ok()) return Report(http.status());
  herald::kube::ApiClient api(std::move(*http));
  herald::kube::Discovery discovery(&api);
  auto info = discovery.Resolve(resource);
  if (!info.ok()) return Report(info.status());

  if (cmd == "get" && argc == 5) {
    return Report(api.Get(info->ObjectPath(ns, argv[4])));
  }
  if (cmd == "delete" && argc == 5) {
    return Report(api.Delete(info->ObjectPath(ns, argv[4])));
  }
  if (cmd == "create" && argc == 5) {
    return Report(api.Create(info->CollectionPath(ns), argv[4]));
  }
  if (cmd == "patch" && argc == 7) {
    const std::string type = argv[5];
    if (type == "merge") {
      return Report(api.Patch(info->ObjectPath(ns, argv[4]),
                              herald::kube::PatchType::kMerge, argv[6]));
    }
    if (type == "json") {
      return Report(api.Patch(info->ObjectPath(ns, argv[4]),
                              herald::kube::PatchType::kJson, argv[6]));
    }
    if (type == "status") {
      if (!info->has_status) {
        std::fprintf(stderr, "%s has no status subresource\n",
                     info->FullName().c_str());
        return 1;
      }
      return Report(api.Patch(info->ObjectPath(ns, argv[4], "status"),
                              herald::kube::PatchType::kMerge, argv[6]));
    }
    return Usage();
  }
  if (cmd == "event" && argc == 8) {
    auto body = api.Get(info->ObjectPath(ns, argv[4]));
    if (!body.ok()) return Report(body);
    auto obj = nlohmann::json::parse(*body);
    herald::kube::InvolvedObject involved{
        info->ApiVersion(),
        info->kind,
        obj["metadata"].value("namespace", ""),
        obj["metadata"].value("name", ""),
        obj["metadata"].value("uid", ""),
        obj["metadata"].value("resourceVersion", "")};
    const std::string type = argv[5];
    auto st = herald::kube::PostEvent(api, involved,
                                      type == "Warning"
                                          ? herald::kube::EventKind::kWarning
                                          : herald::kube::EventKind::kNormal,
                                      argv[6], argv[7]);
    if (!st.ok()) return Report(st);
    std::printf("posted\n");
    return 0;
  }
  return Usage();
}
