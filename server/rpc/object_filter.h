// How inspection requests name resources and objects: resources as users
// write them in kubectl, and the ObjectFilter of listings and the delivery
// stream.
#ifndef HERALD_SERVER_RPC_OBJECT_FILTER_H_
#define HERALD_SERVER_RPC_OBJECT_FILTER_H_

#include <cstdint>
#include <string>

#include "herald/v1/inspection.pb.h"
#include "server/cache/object_store.h"
#include "server/kube/discovery.h"

namespace herald::rpc {

// True when `name`, as users write it ("kopfexamples", "kex",
// "KopfExample.kopf.dev", "kopfexamples.v1.kopf.dev"), denotes `r`, watched
// under `watch_name` ("" when there is no watch name to match). Plural,
// singular, kind and short names match case-insensitively; a suffix after
// the first dot must be the group, the version, or "version.group". An
// empty name denotes nothing.
bool NamesResource(const kube::ResourceInfo& r, const std::string& watch_name,
                   const std::string& name);

// True when the object `key` of `r` passes `filter`; empty fields pass all.
bool FilterMatches(const v1::ObjectFilter& filter, const kube::ResourceInfo& r,
                   const cache::ObjectKey& key);

// A listing's limit: 0 means 500.
inline uint32_t LimitOf(uint32_t limit) { return limit == 0 ? 500 : limit; }

}  // namespace herald::rpc

#endif  // HERALD_SERVER_RPC_OBJECT_FILTER_H_
