// The handlers that handler processes registered, by id. Handlers stay
// registered when their processes disconnect, so work for them waits in the
// sidecar until a process serving them connects again.
#ifndef HERALD_SERVER_ENGINE_REGISTRY_H_
#define HERALD_SERVER_ENGINE_REGISTRY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "server/engine/handler_spec.h"
#include "server/kube/discovery.h"

namespace herald::engine {

// A registered handler: its spec and what the sidecar derived from it.
struct Handler {
  HandlerSpec spec;
  kube::ResourceInfo resource;
  std::vector<std::string> field;        // Parsed spec.field.
  std::vector<std::string> index_field;  // Parsed spec.index.field.
  // spec.value_filter etc. parsed; null when there is no EQUALS value.
  nlohmann::json value_equals, old_equals, new_equals;
  // Registration order: handlers of one cause run in it, as in Kopf.
  uint64_t order = 0;

  const std::string& id() const { return spec.id; }
  // Computed by the sidecar (an index by label or field), never delivered.
  bool declarative() const { return spec.index.has_value(); }
  Cause cause() const { return spec.cause; }
  // Delete handlers hold a finalizer unless optional; timers and daemons
  // always do, so that they stop before the object goes.
  bool needs_finalizer() const {
    return (spec.cause == Cause::kDelete && !spec.optional) ||
           spec.cause == Cause::kTimer || spec.cause == Cause::kDaemon;
  }
  absl::Duration backoff() const;
};

// Checks a spec on its own (not against the registry): the reason it cannot
// be accepted, or OK.
absl::Status ValidateSpec(const HandlerSpec& spec);

// True when the object's labels and annotations pass the handler's filters.
bool MatchesMeta(const Handler& h, const nlohmann::json& body);

// For handlers limited to a field, Kopf's field filters on the two essences:
// the field's old or new value passes the value filter (without one: the
// field is there in either); for update and field handlers, the field also
// changed and its old and new values pass their filters. Handlers without a
// field: true.
bool MatchesField(const Handler& h, const nlohmann::json& old_essence,
                  const nlohmann::json& new_essence);

// An accepted handler whose resource is not resolved yet (a CRD not
// applied yet, or an API server that could not be asked).
struct PendingHandler {
  HandlerSpec spec;
  std::string reason;
  absl::Time since;
};

// Not thread-safe: owned by the engine loop.
class Registry {
 public:
  // Adds a handler whose resource cannot be resolved yet. Fails when the
  // spec is invalid or the id is registered with a different spec.
  absl::Status AddPending(const HandlerSpec& spec, std::string reason,
                          absl::Time now);
  // The pending handlers registered for the resource name `name` become
  // handlers of `resource`; returns their ids. A pending handler whose id
  // meanwhile got registered with a different spec stays out, with the
  // reason in `conflicts`.
  std::vector<std::string> Resolve(const std::string& name,
                                   const kube::ResourceInfo& resource,
                                   std::vector<std::string>* conflicts);
  // Updates why the handlers of `name` are still pending.
  void SetPendingReason(const std::string& name, const std::string& reason);
  // True while a pending handler's resource name could denote `resource`:
  // its cycles must wait, so that no cause is stored as handled without it.
  bool HasPendingFor(const kube::ResourceInfo& resource) const;
  const std::map<std::string, PendingHandler>& pending() const {
    return pending_;
  }

  // Adds a handler whose resource is already resolved. Fails when the id is
  // registered with a different spec.
  absl::Status Add(const HandlerSpec& spec, const kube::ResourceInfo& resource);
  const Handler* Find(const std::string& id) const;
  // Handlers of a resource (by ResourceInfo::FullName()), in registration
  // order. The reference stays valid until the next Add.
  const std::vector<const Handler*>& ForResource(
      const std::string& full_name) const;
  std::vector<const Handler*> All() const;

 private:
  std::map<std::string, std::unique_ptr<Handler>> handlers_;
  // Handler id -> pending handler.
  std::map<std::string, PendingHandler> pending_;
  // Resource full name -> its handlers in order; rebuilt by Add.
  std::map<std::string, std::vector<const Handler*>> by_resource_;
  uint64_t next_order_ = 0;
};

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_REGISTRY_H_
