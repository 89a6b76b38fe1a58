// BLAKE2b (RFC 7693) with a chosen digest size. Kopf names long progress
// annotations with a 4-byte BLAKE2b digest, and BLAKE2b's digest size is a
// parameter of the hash, not a truncation: OpenSSL's fixed 64-byte BLAKE2b
// cannot produce it.
#ifndef HERALD_SERVER_ENGINE_BLAKE2B_H_
#define HERALD_SERVER_ENGINE_BLAKE2B_H_

#include <string>

#include "absl/strings/string_view.h"

namespace herald::engine {

// The digest of `data`, `digest_size` bytes long (1 to 64), unkeyed.
std::string Blake2b(absl::string_view data, int digest_size);

}  // namespace herald::engine

#endif  // HERALD_SERVER_ENGINE_BLAKE2B_H_
