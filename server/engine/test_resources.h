// Resources the engine's unit tests share.
#ifndef HERALD_SERVER_ENGINE_TEST_RESOURCES_H_
#define HERALD_SERVER_ENGINE_TEST_RESOURCES_H_

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

}  // namespace herald::engine::testing

#endif  // HERALD_SERVER_ENGINE_TEST_RESOURCES_H_
