// Resources the engine's unit tests share.
#ifndef HERALD_SERVER_ENGINE_TEST_RESOURCES_H_
#define HERALD_SERVER_ENGINE_TEST_RESOURCES_H_

#include <string>

#include "server/engine/handler_spec.h"
#include "server/kube/discovery.h"

namespace herald::engine::testing {

// kopfexamples.v1.kopf.dev, as k8s/crd.yaml defines it: namespaced, with a
// status subresource.
inline kube::ResourceInfo Kex() {
  kube::ResourceInfo r;
  r.group = "kopf.dev";
  r.version = "v1";
  r.plural = "kopfexamples";
  r.singular = "kopfexample";
  r.kind = "KopfExample";
  r.namespaced = true;
  r.has_status = true;
  return r;
}

// A handler of `cause` for kopfexamples, with nothing else set.
inline HandlerSpec Spec(const std::string& id, Cause cause) {
  HandlerSpec s;
  s.id = id;
  s.resource = "kopfexamples";
  s.cause = cause;
  return s;
}

}  // namespace herald::engine::testing

#endif  // HERALD_SERVER_ENGINE_TEST_RESOURCES_H_
