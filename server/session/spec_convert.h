// herald.v1 HandlerSpecs to the engine's HandlerSpec and back. From the wire,
// every duration must be a valid google.protobuf.Duration and not negative;
// an error names the field. What the engine's spec cannot tell apart comes
// back canonical: a zero duration without presence is left unset.
#ifndef HERALD_SERVER_SESSION_SPEC_CONVERT_H_
#define HERALD_SERVER_SESSION_SPEC_CONVERT_H_

#include "absl/status/statusor.h"
#include "herald/v1/handler.pb.h"
#include "server/engine/handler_spec.h"

namespace herald::session {

absl::StatusOr<engine::HandlerSpec> SpecFromWire(const v1::HandlerSpec& wire);
v1::HandlerSpec SpecToWire(const engine::HandlerSpec& spec);

}  // namespace herald::session

#endif  // HERALD_SERVER_SESSION_SPEC_CONVERT_H_
