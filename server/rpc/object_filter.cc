#include "server/rpc/object_filter.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace herald::rpc {

bool NamesResource(const kube::ResourceInfo& r, const std::string& watch_name,
                   const std::string& name) {
  if (name.empty()) return false;
  if (name == watch_name || name == r.FullName()) return true;
  std::string base = name.substr(0, name.find('.'));
  std::string rest = name.find('.') == std::string::npos
                         ? ""
                         : name.substr(name.find('.') + 1);
  if (!rest.empty() && rest != r.group &&
      rest != absl::StrCat(r.version, ".", r.group) && rest != r.version) {
    return false;
  }
  if (absl::EqualsIgnoreCase(base, r.plural) ||
      absl::EqualsIgnoreCase(base, r.singular) ||
      absl::EqualsIgnoreCase(base, r.kind)) {
    return true;
  }
  for (const auto& s : r.short_names) {
    if (absl::EqualsIgnoreCase(base, s)) return true;
  }
  return false;
}

bool FilterMatches(const v1::ObjectFilter& filter, const kube::ResourceInfo& r,
                   const cache::ObjectKey& key) {
  if (!filter.resource().empty() && !NamesResource(r, "", filter.resource())) {
    return false;
  }
  if (!filter.namespace_().empty() && filter.namespace_() != key.ns) {
    return false;
  }
  if (!filter.name().empty() && filter.name() != key.name) return false;
  return true;
}

}  // namespace herald::rpc
