// The Herald sidecar. main only parses flags and wires components; each
// component lives in its own package under server/.
//
//   herald --resource=kopfexamples --namespaces='team-*,!team-x'

#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "server/kube/api_client.h"
#include "server/kube/beast_http_client.h"
#include "server/kube/cluster_config.h"
#include "server/kube/discovery.h"
#include "server/kube/namespace_scope.h"
#include "server/kube/resource_watch.h"
#include "server/runtime/logging.h"

ABSL_FLAG(
    std::string, kubeconfig, "",
    "Path to a kubeconfig file; default: $KUBECONFIG, then the in-cluster "
    "service account, then ~/.kube/config.");
ABSL_FLAG(std::string, context, "", "Kubeconfig context; default: current.");
ABSL_FLAG(std::vector<std::string>, resource, {},
          "Resources to watch, comma-separated, as kubectl names them "
          "(kopfexamples, KopfExample.kopf.dev, deployments.v1.apps).");
ABSL_FLAG(std::string, namespaces, "",
          "Namespace scope: empty for cluster-wide, names, globs and "
          "negations ('team-*,!team-x').");
ABSL_FLAG(double, qps, 50, "Client-side rate limit of API requests.");
ABSL_FLAG(int, burst, 100, "Burst of the client-side rate limit.");
ABSL_FLAG(bool, keep_managed_fields, false,
          "Keep metadata.managedFields in cached objects.");
ABSL_FLAG(absl::Duration, watch_idle_timeout, absl::Seconds(70),
          "Reconnect a watch that delivered nothing for this long.");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error.");

namespace {

using herald::kube::ResourceInfo;
using herald::kube::WatchEvent;

// Logs every event it sees: the sidecar's behaviour until handlers are wired.
class LogEvents : public herald::kube::WatchHandler {
 public:
  void OnEvent(const ResourceInfo& r, const WatchEvent& e) override {
    const auto& o = *e.object;
    HERALD_LOG(INFO, "event")
        << herald::kube::WatchEventTypeName(e.type) << " " << r.FullName()
        << " " << (o.key.ns.empty() ? "" : o.key.ns + "/") << o.key.name
        << " rv=" << o.resource_version << (e.from_listing ? " (listing)" : "");
  }
  void OnListed(const ResourceInfo& r, const std::string& ns) override {
    HERALD_LOG(INFO, "event") << "LISTED " << r.FullName() << " "
                              << (ns.empty() ? "(all namespaces)" : ns);
  }
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "herald: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "The Herald sidecar: watches Kubernetes resources for handler "
      "processes.");
  absl::ParseCommandLine(argc, argv);
  const std::string level = absl::GetFlag(FLAGS_log_level);
  using herald::runtime::Severity;
  if (level == "debug") {
    herald::runtime::SetMinLogSeverity(Severity::kDebug);
  } else if (level == "warning") {
    herald::runtime::SetMinLogSeverity(Severity::kWarning);
  } else if (level == "error") {
    herald::runtime::SetMinLogSeverity(Severity::kError);
  } else if (level != "info") {
    return Fail(absl::StrCat("--log_level: unknown level '", level, "'"));
  }
  const auto resources = absl::GetFlag(FLAGS_resource);
  if (resources.empty()) return Fail("--resource: name at least one resource");
  auto scope =
      herald::kube::NamespaceScope::Parse(absl::GetFlag(FLAGS_namespaces));
  if (!scope.ok())
    return Fail(absl::StrCat("--namespaces: ", scope.status().message()));

  auto config = herald::kube::ResolveClusterConfig(
      absl::GetFlag(FLAGS_kubeconfig), absl::GetFlag(FLAGS_context));
  if (!config.ok()) return Fail(std::string(config.status().message()));
  auto http = herald::kube::NewBeastHttpClient(*config);
  if (!http.ok()) return Fail(std::string(http.status().message()));
  HERALD_LOG(INFO, "main") << "API server " << config->server.ToString() << " ("
                           << config->source << ")";

  // Signals go to the thread that waits for them, not to worker threads.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  herald::kube::ApiClient::Options api_options;
  api_options.qps = absl::GetFlag(FLAGS_qps);
  api_options.burst = absl::GetFlag(FLAGS_burst);
  herald::kube::ApiClient api(std::move(*http), api_options);
  herald::kube::Discovery discovery(&api);
  herald::kube::WatchOptions watch_options;
  watch_options.strip_managed_fields =
      !absl::GetFlag(FLAGS_keep_managed_fields);
  watch_options.idle_timeout = absl::GetFlag(FLAGS_watch_idle_timeout);
  LogEvents log_events;

  std::vector<std::unique_ptr<herald::kube::ResourceWatch>> watches;
  for (const auto& name : resources) {
    watches.push_back(std::make_unique<herald::kube::ResourceWatch>(
        &api, &discovery, name, *scope, &log_events, watch_options));
    watches.back()->Start();
  }

  int sig = 0;
  sigwait(&signals, &sig);
  HERALD_LOG(INFO, "main") << "received "
                           << (sig == SIGINT ? "SIGINT" : "SIGTERM")
                           << "; stopping";
  for (auto& w : watches) w->Stop();
  HERALD_LOG(INFO, "main") << "stopped";
  return 0;
}
