#include "server/engine/delivery.h"

#include "absl/strings/str_cat.h"

namespace herald::engine {

std::string StreamName(StreamId id) { return absl::StrCat("stream-", id); }

std::string DeliveryName(DeliveryId id) { return absl::StrCat("d-", id); }

}  // namespace herald::engine
