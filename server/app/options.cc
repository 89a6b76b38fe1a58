#include "server/app/options.h"

#include <grp.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <vector>

#include "absl/flags/marshalling.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "server/kube/label_selector.h"

namespace herald::app {
namespace {

// sun_path holds 108 bytes, the terminating NUL included.
constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;

// The value as its flag prints it.
template <typename T>
std::string FlagText(const T& value) {
  return absl::UnparseFlag(value);
}
std::string FlagText(absl::Duration value) {
  return absl::FormatDuration(value);  // What AbslUnparseFlag gives.
}

template <typename T>
absl::Status BadValue(absl::string_view flag, const T& value,
                      absl::string_view why) {
  return FlagError(flag, FlagText(value), why);
}

// Why `name` is not a DNS-1123 name (a subdomain when `dots`, else a
// label) of at most `max` characters, or "" when it is.
std::string DnsNameError(absl::string_view name, size_t max, bool dots) {
  if (name.empty()) return "must not be empty";
  if (name.size() > max)
    return absl::StrCat("longer than ", max, " characters");
  for (char c : name) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' ||
          (dots && c == '.'))) {
      return absl::StrCat("may contain only lowercase letters, digits, '-'",
                          dots ? " and '.'" : "");
    }
  }
  if (!absl::ascii_isalnum(name.front()) || !absl::ascii_isalnum(name.back())) {
    return "must start and end with a letter or digit";
  }
  return "";
}

}  // namespace

std::string LeaderElectIdentity(const AppOptions& o) {
  if (!o.leader_elect_identity.empty()) return o.leader_elect_identity;
  if (const char* pod = std::getenv("POD_NAME"); pod != nullptr && *pod) {
    return pod;
  }
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == 0) {
    std::snprintf(host, sizeof(host), "herald");
  }
  std::random_device random;
  return absl::StrFormat("%s_%08x", host, random());
}

std::string LeaderElectNamespace(const AppOptions& o,
                                 const std::string& namespace_file) {
  if (!o.leader_elect_namespace.empty()) return o.leader_elect_namespace;
  if (const char* ns = std::getenv("POD_NAMESPACE"); ns != nullptr && *ns) {
    return ns;
  }
  std::ifstream in(namespace_file);
  std::string ns;
  if (in && std::getline(in, ns)) {
    ns = std::string(absl::StripAsciiWhitespace(ns));
    if (!ns.empty()) return ns;
  }
  return "default";
}

bool AbslParseFlag(absl::string_view text, SocketMode* mode,
                   std::string* error) {
  mode_t parsed = 0;
  bool ok = !text.empty() && text.size() <= 4;
  for (char c : text) {
    if (c < '0' || c > '7') ok = false;
    if (ok) parsed = parsed * 8 + (c - '0');
  }
  if (!ok || parsed > 0777) {
    *error = "not an octal mode between 0000 and 0777 (e.g. 0660)";
    return false;
  }
  mode->mode = parsed;
  return true;
}

std::string AbslUnparseFlag(SocketMode mode) {
  return absl::StrFormat("%04o", static_cast<unsigned>(mode.mode));
}

bool AbslParseFlag(absl::string_view text, SocketGroup* group,
                   std::string* error) {
  SocketGroup parsed;
  parsed.name = std::string(text);
  if (!text.empty()) {
    std::vector<char> buffer(16384);
    struct group entry;
    struct group* found = nullptr;
    uint32_t number = 0;
    if (::getgrnam_r(parsed.name.c_str(), &entry, buffer.data(), buffer.size(),
                     &found) == 0 &&
        found != nullptr) {
      parsed.gid = found->gr_gid;
    } else if (absl::SimpleAtoi(text, &number)) {
      parsed.gid = static_cast<gid_t>(number);
    } else {
      *error = "no such group";
      return false;
    }
  }
  *group = std::move(parsed);
  return true;
}

std::string AbslUnparseFlag(const SocketGroup& group) { return group.name; }

absl::Status FlagError(absl::string_view flag, absl::string_view value,
                       absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, "='", value, "': ", why));
}

absl::Status ValidateAppOptions(const AppOptions& o) {
  if (!(o.qps >= 0) || std::isinf(o.qps)) {
    return BadValue("qps", o.qps, "must be 0 (no client-side limit) or more");
  }
  if (o.burst < 1) {
    return BadValue("burst", o.burst,
                    "must be at least 1 (requests let through at once by "
                    "the client-side limit)");
  }
  if (o.max_message_bytes < kMinMessageBytes ||
      o.max_message_bytes > kMaxMessageBytes) {
    return BadValue("max_message_bytes", o.max_message_bytes,
                    absl::StrCat("must be between ", kMinMessageBytes, " and ",
                                 kMaxMessageBytes, " (1 GiB)"));
  }
  if (o.watch_idle_timeout < absl::Seconds(1)) {
    return BadValue("watch_idle_timeout", o.watch_idle_timeout,
                    "must be at least 1s (every list and watch read is "
                    "abandoned after this long without data)");
  }
  if (o.stop_wait < absl::ZeroDuration()) {
    return BadValue("stop_wait", o.stop_wait, "must not be negative");
  }
  // client-go's constraints: lease duration > renew deadline > 1.2 x retry
  // period > 0. The Lease keeps whole seconds.
  const absl::Duration lease = o.leader_elect_lease_duration;
  const absl::Duration renew = o.leader_elect_renew_deadline;
  const absl::Duration retry = o.leader_elect_retry_period;
  if (lease < absl::Seconds(1) ||
      absl::Trunc(lease, absl::Seconds(1)) != lease) {
    return BadValue("leader_elect_lease_duration", lease,
                    "must be a whole number of seconds, at least 1s (the "
                    "Lease keeps seconds)");
  }
  if (renew <= absl::ZeroDuration() || renew >= lease) {
    return BadValue("leader_elect_renew_deadline", renew,
                    absl::StrCat("must be above 0 and shorter than "
                                 "--leader_elect_lease_duration (",
                                 FlagText(lease),
                                 "): the leader must stop before another "
                                 "replica may take the lease"));
  }
  if (retry <= absl::ZeroDuration() || renew <= retry * 1.2) {
    return BadValue(
        "leader_elect_retry_period", retry,
        absl::StrCat("must be above 0, and 1.2 times it shorter "
                     "than --leader_elect_renew_deadline (",
                     FlagText(renew), "), so that a renewal can be retried"));
  }
  if (std::string why = DnsNameError(o.leader_elect_lease_name, 253, true);
      !why.empty()) {
    return BadValue("leader_elect_lease_name", o.leader_elect_lease_name,
                    absl::StrCat("not a Lease name (a DNS subdomain): ", why));
  }
  if (!o.leader_elect_namespace.empty()) {
    if (std::string why = DnsNameError(o.leader_elect_namespace, 63, false);
        !why.empty()) {
      return BadValue("leader_elect_namespace", o.leader_elect_namespace,
                      absl::StrCat("not a namespace name: ", why));
    }
  }
  if (o.leader_elect_identity.size() > 128 ||
      (!o.leader_elect_identity.empty() &&
       absl::StripAsciiWhitespace(o.leader_elect_identity).empty())) {
    return BadValue("leader_elect_identity", o.leader_elect_identity,
                    "must be empty (the pod's name) or 1 to 128 characters, "
                    "not only spaces");
  }
  // Lists built in code rather than parsed get the same check as --resource.
  for (size_t i = 0; i < o.resources.names.size(); ++i) {
    if (absl::StripAsciiWhitespace(o.resources.names[i]).empty()) {
      return BadValue("resource", o.resources,
                      absl::StrCat("entry ", i + 1, " is empty"));
    }
  }
  const std::string& prefix = o.annotation_prefix;
  if (std::string why = kube::QualifiedNameError(
          absl::AsciiStrToLower(absl::StrCat(prefix, "/x")));
      !why.empty()) {
    return BadValue("annotation_prefix", prefix,
                    absl::StrCat("not usable as an annotation prefix: ",
                                 prefix.empty() ? "it is empty" : why));
  }
  if (!o.finalizer.empty()) {
    if (std::string why = kube::QualifiedNameError(o.finalizer); !why.empty()) {
      return BadValue("finalizer", o.finalizer,
                      absl::StrCat("not a valid finalizer name: ", why));
    }
  }
  if (o.socket.size() > kMaxSocketPath) {
    return BadValue(
        "socket", o.socket,
        absl::StrCat("a Unix socket path has at most ", kMaxSocketPath,
                     " bytes; this one has ", o.socket.size()));
  }
  if (o.socket_mode.mode > 0777) {
    return BadValue("socket_mode", o.socket_mode,
                    "not an octal mode between 0000 and 0777 (e.g. 0660)");
  }
  if (!o.socket_group.name.empty() && !o.socket_group.gid.has_value()) {
    return BadValue("socket_group", o.socket_group, "no such group");
  }
  if (!o.listen.empty() && !absl::StartsWith(o.listen, "unix:")) {
    const size_t colon = o.listen.rfind(':');
    int port = -1;
    if (colon == std::string::npos ||
        !absl::SimpleAtoi(o.listen.substr(colon + 1), &port) || port < 0 ||
        port > 65535) {
      return BadValue("listen", o.listen,
                      "not host:port (e.g. 127.0.0.1:50051, [::]:50051)");
    }
  }
  if (o.socket.empty() && o.listen.empty()) {
    return absl::InvalidArgumentError(
        "--socket and --listen are both empty: nowhere to listen");
  }
  return absl::OkStatus();
}

}  // namespace herald::app
