// Posting core/v1 Events about objects, as `kubectl get events` shows them.
#ifndef HERALD_SERVER_KUBE_EVENTS_H_
#define HERALD_SERVER_KUBE_EVENTS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/kube/api_client.h"
#include "server/kube/discovery.h"

namespace herald::kube {

// The object an Event is about.
struct InvolvedObject {
  std::string api_version;
  std::string kind;
  std::string ns;  // Empty for cluster-scoped objects.
  std::string name;
  std::string uid;
  std::string resource_version;
};

enum class EventKind { kNormal, kWarning };

// Messages longer than this are cut (and end in "...").
inline constexpr size_t kMaxEventMessage = 1024;

// The JSON body of the Event. Events about cluster-scoped objects go to the
// "default" namespace.
std::string BuildEvent(const InvolvedObject& object, EventKind kind,
                       const std::string& reason, const std::string& message,
                       const std::string& component, absl::Time now);

// Posts it.
absl::Status PostEvent(ApiClient& api, const InvolvedObject& object,
                       EventKind kind, const std::string& reason,
                       const std::string& message,
                       const std::string& component = "herald");

}  // namespace herald::kube

#endif  // HERALD_SERVER_KUBE_EVENTS_H_
