// Flags whose values have a structure (--index, --resource, --namespaces,
// --operator_memo, --log_level, --log_format, --socket_mode, --socket_group)
// are declared as their text and parsed here by their types' AbslParseFlag:
// Abseil's ParseCommandLine would report a value its type refuses itself and
// exit with code 1, where the sidecar exits with code 2 and one line of its
// own.
#include "server/app/flags.h"

#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

ABSL_FLAG(
    std::string, kubeconfig, "",
    "Path to a kubeconfig file; default: $KUBECONFIG, then the in-cluster "
    "service account, then ~/.kube/config.");
ABSL_FLAG(std::string, context, "", "Kubeconfig context; default: current.");
ABSL_FLAG(std::string, socket, herald::app::AppOptions().socket,
          "Unix socket for handler processes; empty for none.");
ABSL_FLAG(std::string, socket_mode,
          absl::UnparseFlag(herald::app::AppOptions().socket_mode),
          "Permissions of the --socket file, in octal, set whatever the "
          "umask: whoever can connect can register handlers and receive "
          "every object watched.");
ABSL_FLAG(std::string, socket_group, "",
          "Group (name or number) to own the --socket file, so that handler "
          "processes running as another user in it can connect; empty: the "
          "sidecar's group.");
ABSL_FLAG(std::string, listen, "",
          "Also listen on this TCP address (e.g. 127.0.0.1:50051); empty for "
          "none.");
ABSL_FLAG(std::string, resource, "",
          "Resources to watch from the start, comma-separated, as kubectl "
          "names them (kopfexamples, KopfExample.kopf.dev, "
          "deployments.v1.apps). Resources that handlers register for are "
          "watched anyway.");
ABSL_FLAG(std::string, annotation_prefix,
          herald::app::AppOptions().annotation_prefix,
          "Prefix of the progress and diff-base annotations; "
          "kopf.zalando.org takes over from a Kopf operator.");
ABSL_FLAG(std::string, finalizer, "",
          "Finalizer name; default <prefix>/finalizer, or Kopf's with Kopf's "
          "prefix.");
ABSL_FLAG(uint64_t, max_message_bytes,
          herald::app::AppOptions().max_message_bytes,
          "Largest message accepted from or sent to a handler process.");
ABSL_FLAG(bool, log_events, false, "Log every watch event at INFO.");
ABSL_FLAG(std::string, operator_memo,
          absl::UnparseFlag(herald::app::AppOptions().operator_memo),
          "The operator memo as a JSON object; each object's memo starts as a "
          "shallow copy of it.");
ABSL_FLAG(std::string, namespaces, "",
          "Namespace scope: empty for cluster-wide, names, globs and "
          "negations ('team-*,!team-x').");
ABSL_FLAG(double, qps, herald::app::AppOptions().qps,
          "Client-side rate limit of API requests per second; 0 for none, "
          "the default: the API server's own flow control paces the sidecar "
          "(its 429 answers are retried after their Retry-After), as "
          "controller-runtime and Kopf leave it by default.");
ABSL_FLAG(int, burst, herald::app::AppOptions().burst,
          "Burst of the client-side rate limit (with --qps above 0).");
ABSL_FLAG(bool, keep_managed_fields, false,
          "Keep metadata.managedFields in cached objects.");
ABSL_FLAG(absl::Duration, watch_idle_timeout,
          herald::app::AppOptions().watch_idle_timeout,
          "Reconnect a watch that delivered nothing for this long.");
ABSL_FLAG(std::string, log_level,
          absl::UnparseFlag(herald::app::AppOptions().log_level),
          "debug, info, warning or error.");
ABSL_FLAG(std::string, log_format,
          absl::UnparseFlag(herald::app::AppOptions().log_format),
          "text (a line per message: time, level letter, [component], "
          "message) or json (a JSON object per line: time, level, logger, "
          "message, and the namespace, name, resource and handler id of "
          "what the line is about).");
ABSL_FLAG(std::string, index, "",
          "Declarative indices computed by the sidecar, comma-separated: "
          "NAME=RESOURCE:label:KEY or NAME=RESOURCE:field:PATH (e.g. "
          "by_app=pods:label:app,by_node=pods:field:spec.nodeName).");
ABSL_FLAG(std::string, health_listen, "",
          "Serve /healthz (probe handlers), /readyz (listings and indices "
          "in) and /metrics (Prometheus) over HTTP on this address, e.g. "
          "0.0.0.0:8080; empty for none.");
ABSL_FLAG(absl::Duration, stop_wait, herald::app::AppOptions().stop_wait,
          "On SIGTERM: how long daemons and cleanup handlers get to finish "
          "before the handler streams close.");

ABSL_FLAG(bool, leader_elect, false,
          "Elect one leader among the sidecars sharing a Lease (replicas of "
          "a Deployment): only the leader delivers and writes; the others "
          "stand by with warm caches and take over when its lease expires or "
          "is released.");
ABSL_FLAG(absl::Duration, leader_elect_lease_duration,
          herald::app::AppOptions().leader_elect_lease_duration,
          "How long a standby waits, after it last saw the lease change, "
          "before it takes the lease over (whole seconds).");
ABSL_FLAG(absl::Duration, leader_elect_renew_deadline,
          herald::app::AppOptions().leader_elect_renew_deadline,
          "How long the leader may fail to renew its lease before it stops "
          "delivering and writing and exits (shorter than the lease "
          "duration).");
ABSL_FLAG(absl::Duration, leader_elect_retry_period,
          herald::app::AppOptions().leader_elect_retry_period,
          "How often the lease is renewed, and how often a standby tries to "
          "acquire it.");
ABSL_FLAG(std::string, leader_elect_identity, "",
          "This replica's holder identity in the Lease; empty for $POD_NAME, "
          "else the hostname and a random suffix.");
ABSL_FLAG(std::string, leader_elect_lease_name,
          herald::app::AppOptions().leader_elect_lease_name,
          "The name of the coordination.k8s.io/v1 Lease.");
ABSL_FLAG(std::string, leader_elect_namespace, "",
          "The Lease's namespace; empty for the pod's own ($POD_NAMESPACE, "
          "else the service account's), else \"default\".");

namespace herald::app {
namespace {

// The text of `flag` parsed by T's AbslParseFlag; an error names the flag,
// the text and why.
template <typename T>
absl::Status ParseText(const absl::Flag<std::string>& flag, T* value) {
  const std::string text = absl::GetFlag(flag);
  std::string why;
  if (absl::ParseFlag(text, value, &why)) return absl::OkStatus();
  return FlagError(absl::GetFlagReflectionHandle(flag).Name(), text, why);
}

}  // namespace

runtime::LogFormat LogFormatFromFlags() {
  runtime::LogFormat format = runtime::LogFormat::kText;
  std::string why;
  if (!absl::ParseFlag(absl::GetFlag(FLAGS_log_format), &format, &why)) {
    return runtime::LogFormat::kText;
  }
  return format;
}

absl::StatusOr<AppOptions> AppOptionsFromFlags() {
  AppOptions o;
  o.kubeconfig = absl::GetFlag(FLAGS_kubeconfig);
  o.context = absl::GetFlag(FLAGS_context);
  o.socket = absl::GetFlag(FLAGS_socket);
  o.listen = absl::GetFlag(FLAGS_listen);
  o.annotation_prefix = absl::GetFlag(FLAGS_annotation_prefix);
  o.finalizer = absl::GetFlag(FLAGS_finalizer);
  o.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  o.log_events = absl::GetFlag(FLAGS_log_events);
  o.qps = absl::GetFlag(FLAGS_qps);
  o.burst = absl::GetFlag(FLAGS_burst);
  o.keep_managed_fields = absl::GetFlag(FLAGS_keep_managed_fields);
  o.watch_idle_timeout = absl::GetFlag(FLAGS_watch_idle_timeout);
  o.health_listen = absl::GetFlag(FLAGS_health_listen);
  o.stop_wait = absl::GetFlag(FLAGS_stop_wait);
  o.leader_elect = absl::GetFlag(FLAGS_leader_elect);
  o.leader_elect_lease_duration =
      absl::GetFlag(FLAGS_leader_elect_lease_duration);
  o.leader_elect_renew_deadline =
      absl::GetFlag(FLAGS_leader_elect_renew_deadline);
  o.leader_elect_retry_period = absl::GetFlag(FLAGS_leader_elect_retry_period);
  o.leader_elect_identity = absl::GetFlag(FLAGS_leader_elect_identity);
  o.leader_elect_lease_name = absl::GetFlag(FLAGS_leader_elect_lease_name);
  o.leader_elect_namespace = absl::GetFlag(FLAGS_leader_elect_namespace);
  for (absl::Status parsed : {
           ParseText(FLAGS_socket_mode, &o.socket_mode),
           ParseText(FLAGS_socket_group, &o.socket_group),
           ParseText(FLAGS_resource, &o.resources),
           ParseText(FLAGS_operator_memo, &o.operator_memo),
           ParseText(FLAGS_namespaces, &o.namespaces),
           ParseText(FLAGS_log_level, &o.log_level),
           ParseText(FLAGS_log_format, &o.log_format),
           ParseText(FLAGS_index, &o.indices),
       }) {
    if (!parsed.ok()) return parsed;
  }
  if (absl::Status valid = ValidateAppOptions(o); !valid.ok()) return valid;
  return o;
}

}  // namespace herald::app
