// Turning an object's JSON, as the API server sends it, into what the cache
// keeps: minified text without metadata.managedFields, plus its key, uid and
// resourceVersion. The hot path of every watch event and listed item.
//
// The fast path reads the text with simdjson's on-demand parser and cuts
// managedFields out of the text itself: no DOM is built and nothing is
// re-serialized. Anything unusual (invalid JSON, missing metadata, duplicate
// keys) goes through the nlohmann DOM path, whose errors are the reference.
#ifndef HERALD_SERVER_KUBE_INGEST_H_
#define HERALD_SERVER_KUBE_INGEST_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "server/cache/object_store.h"

namespace herald::kube {

absl::StatusOr<cache::CachedObject> IngestObject(absl::string_view json,
                                                 bool strip_managed_fields);

// The same through the DOM only (the reference; for tests and benchmarks).
absl::StatusOr<cache::CachedObject> IngestObjectWithDom(
    absl::string_view json, bool strip_managed_fields);

// The DOM path for an object already parsed (a watch event parsed whole);
// `obj` loses its managedFields when asked.
absl::StatusOr<cache::CachedObject> IngestParsed(nlohmann::json& obj,
                                                 bool strip_managed_fields);

// One watch event line: its type and the object's raw JSON (a view into
// `line`). False when the line is not a JSON object with "type" and
// "object"; the caller then falls back to a full parse.
bool SplitWatchEvent(absl::string_view line, std::string* type,
                     absl::string_view* object);

}  // namespace herald::kube

#endif  // HERALD_SERVER_KUBE_INGEST_H_
