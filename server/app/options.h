// What the sidecar is told on its command line, as values: one field per
// flag, with the flag's default. server/app/flags.cc fills it from the
// flags; tests fill it directly.
#ifndef HERALD_SERVER_APP_OPTIONS_H_
#define HERALD_SERVER_APP_OPTIONS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/engine/flag_types.h"
#include "server/kube/discovery.h"
#include "server/kube/namespace_scope.h"
#include "server/runtime/logging.h"

namespace herald::app {

// --socket_mode: the permissions of the socket file, in octal ("0660" or
// "660"), between 0000 and 0777. Abseil's flag extension point.
struct SocketMode {
  mode_t mode = 0660;
};
bool AbslParseFlag(absl::string_view text, SocketMode* mode,
                   std::string* error);
std::string AbslUnparseFlag(SocketMode mode);

// --socket_group: the group to own the socket file, by name or number,
// looked up when parsed; "" for the sidecar's own. Abseil's flag extension
// point.
struct SocketGroup {
  std::string name;
  std::optional<gid_t> gid;  // Set when `name` is.
};
bool AbslParseFlag(absl::string_view text, SocketGroup* group,
                   std::string* error);
std::string AbslUnparseFlag(const SocketGroup& group);

struct AppOptions {
  std::string kubeconfig;  // --kubeconfig; "": $KUBECONFIG, in-cluster, ...
  std::string context;     // --context; "": the current one.
  std::string socket = "/tmp/herald.sock";       // --socket; "" for none.
  SocketMode socket_mode;                        // --socket_mode
  SocketGroup socket_group;                      // --socket_group
  std::string listen;                            // --listen: TCP host:port.
  kube::ResourceNames resources;                 // --resource
  std::string annotation_prefix = "herald.dev";  // --annotation_prefix
  std::string finalizer;                         // --finalizer
  uint64_t max_message_bytes = 16 << 20;         // --max_message_bytes
  bool log_events = false;                       // --log_events
  engine::OperatorMemo operator_memo;            // --operator_memo
  kube::NamespaceScope namespaces;               // --namespaces
  double qps = 0;                                // --qps; 0 for no limit.
  int burst = 100;                               // --burst
  bool keep_managed_fields = false;              // --keep_managed_fields
  absl::Duration watch_idle_timeout = absl::Seconds(70);
  runtime::Severity log_level = runtime::Severity::kInfo;     // --log_level
  runtime::LogFormat log_format = runtime::LogFormat::kText;  // --log_format
  engine::IndexSpecs indices;                                 // --index
  std::string health_listen;  // --health_listen; "" for none.
  absl::Duration stop_wait = absl::Seconds(10);  // --stop_wait
  // Leader election (client-go's semantics and defaults).
  bool leader_elect = false;  // --leader_elect
  absl::Duration leader_elect_lease_duration = absl::Seconds(15);
  absl::Duration leader_elect_renew_deadline = absl::Seconds(10);
  absl::Duration leader_elect_retry_period = absl::Seconds(2);
  // --leader_elect_identity; "": $POD_NAME, else the hostname and a random
  // suffix.
  std::string leader_elect_identity;
  std::string leader_elect_lease_name = "herald";
  // --leader_elect_namespace; "": the pod's ($POD_NAMESPACE, else the
  // service account's namespace file), else "default".
  std::string leader_elect_namespace;
};

// The holder identity --leader_elect uses: --leader_elect_identity, else
// $POD_NAME, else the hostname, "_" and 8 random hex digits.
std::string LeaderElectIdentity(const AppOptions& options);
// The Lease's namespace: --leader_elect_namespace, else $POD_NAMESPACE, else
// the namespace in `service_account_namespace_file` (trimmed), else
// "default".
std::string LeaderElectNamespace(
    const AppOptions& options,
    const std::string& service_account_namespace_file =
        "/var/run/secrets/kubernetes.io/serviceaccount/namespace");

// Handler messages: at least this, so that a delivery of a small object
// fits, at most 1 GiB, so that gRPC's own limit (twice ours) fits in an int.
inline constexpr uint64_t kMinMessageBytes = 1024;
inline constexpr uint64_t kMaxMessageBytes = uint64_t{1} << 30;

// InvalidArgument "--<flag>='<value>': <why>", the one line a bad flag
// gets: "--qps='-1': must be 0 (no client-side limit) or more".
absl::Status FlagError(absl::string_view flag, absl::string_view value,
                       absl::string_view why);

// Why the options cannot work, as FlagError names the first bad one (the
// value as the flag would print it); OK when they can. Nothing is started
// with options that fail this.
absl::Status ValidateAppOptions(const AppOptions& options);

}  // namespace herald::app

#endif  // HERALD_SERVER_APP_OPTIONS_H_
