#include "server/kube/events.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace herald::kube {

std::string BuildEvent(const InvolvedObject& object, EventKind kind,
                       const std::string& reason, const std::string& message,
                       const std::string& component, absl::Time now) {
  const std::string ns = object.ns.empty() ? "default" : object.ns;
  std::string msg = message;
  if (msg.size() > kMaxEventMessage) {
    msg.resize(kMaxEventMessage - 3);
    // Do not leave half of a UTF-8 sequence behind.
    while (!msg.empty() &&
           (static_cast<unsigned char>(msg.back()) & 0xC0) == 0x80) {
      msg.pop_back();
    }
    if (!msg.empty() && (static_cast<unsigned char>(msg.back()) & 0x80)) {
      msg.pop_back();
    }
    msg += "...";
  }
  const std::string ts =
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now, absl::UTCTimeZone());
  const std::string micro_ts =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", now, absl::UTCTimeZone());
  nlohmann::json involved = {{"apiVersion", object.api_version},
                             {"kind", object.kind},
                             {"name", object.name},
                             {"uid", object.uid}};
  if (!object.ns.empty()) involved["namespace"] = object.ns;
  if (!object.resource_version.empty()) {
    involved["resourceVersion"] = object.resource_version;
  }
  nlohmann::json ev = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata",
       {{"generateName", absl::StrCat(object.name.substr(0, 200), ".")},
        {"namespace", ns}}},
      {"involvedObject", involved},
      {"type", kind == EventKind::kWarning ? "Warning" : "Normal"},
      {"reason", reason},
      {"message", msg},
      {"source", {{"component", component}}},
      {"reportingComponent", component},
      {"reportingInstance", component},
      {"firstTimestamp", ts},
      {"lastTimestamp", ts},
      {"eventTime", micro_ts},
      {"action", reason},
      {"count", 1}};
  return ev.dump();
}

absl::Status PostEvent(ApiClient& api, const InvolvedObject& object,
                       EventKind kind, const std::string& reason,
                       const std::string& message,
                       const std::string& component) {
  const std::string ns = object.ns.empty() ? "default" : object.ns;
  auto r = api.Create(
      absl::StrCat("/api/v1/namespaces/", ns, "/events"),
      BuildEvent(object, kind, reason, message, component, api.clock()->Now()));
  return r.ok() ? absl::OkStatus() : r.status();
}

}  // namespace herald::kube
