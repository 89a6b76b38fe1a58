#include "server/kube/discovery.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace herald::kube {
namespace {

using nlohmann::json;

bool NameMatches(const ResourceInfo& r, const std::string& name) {
  if (absl::EqualsIgnoreCase(r.plural, name) ||
      absl::EqualsIgnoreCase(r.singular, name) ||
      absl::EqualsIgnoreCase(r.kind, name)) {
    return true;
  }
  for (const auto& s : r.short_names) {
    if (absl::EqualsIgnoreCase(s, name)) return true;
  }
  return false;
}

// The (group, version-or-empty) pairs a dotted name may denote; empty for an
// unqualified name (any group, preferred version).
std::vector<std::pair<std::string, std::string>> Qualifiers(
    const std::vector<std::string>& parts) {
  std::vector<std::pair<std::string, std::string>> wanted;
  if (parts.size() > 1) {
    // "<resource>.<version>.<group>" and "<resource>.<version>" (core).
    wanted.emplace_back(
        absl::StrJoin(std::vector<std::string>(parts.begin() + 2, parts.end()),
                      "."),
        parts[1]);
    // "<resource>.<group>".
    wanted.emplace_back(
        absl::StrJoin(std::vector<std::string>(parts.begin() + 1, parts.end()),
                      "."),
        "");
  }
  return wanted;
}

}  // namespace

bool CouldDenote(const std::string& name, const ResourceInfo& r) {
  std::vector<std::string> parts = absl::StrSplit(name, '.');
  if (!NameMatches(r, parts[0])) return false;
  const auto wanted = Qualifiers(parts);
  if (wanted.empty()) return true;
  for (const auto& [group, version] : wanted) {
    if (group == r.group && (version.empty() || version == r.version)) {
      return true;
    }
  }
  return false;
}

std::string ResourceInfo::ApiPath() const {
  return group.empty() ? absl::StrCat("/api/", version)
                       : absl::StrCat("/apis/", group, "/", version);
}

std::string ResourceInfo::CollectionPath(const std::string& ns) const {
  if (namespaced && !ns.empty()) {
    return absl::StrCat(ApiPath(), "/namespaces/", ns, "/", plural);
  }
  return absl::StrCat(ApiPath(), "/", plural);
}

std::string ResourceInfo::ObjectPath(const std::string& ns,
                                     const std::string& name,
                                     const std::string& subresource) const {
  std::string p = absl::StrCat(CollectionPath(ns), "/", name);
  if (!subresource.empty()) absl::StrAppend(&p, "/", subresource);
  return p;
}

std::string ResourceInfo::FullName() const {
  return group.empty() ? absl::StrCat(plural, ".", version)
                       : absl::StrCat(plural, ".", version, ".", group);
}

std::string ResourceInfo::ApiVersion() const {
  return group.empty() ? version : absl::StrCat(group, "/", version);
}

absl::StatusOr<std::vector<ResourceInfo>> ParseResourceList(
    const std::string& group, const std::string& version,
    const std::string& text) {
  json doc = json::parse(text, nullptr, false);
  if (!doc.is_object() || !doc.contains("resources") ||
      !doc["resources"].is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("discovery of ", group.empty() ? "" : group + "/", version,
                     ": not an APIResourceList"));
  }
  std::vector<ResourceInfo> out;
  std::set<std::string> with_status;
  for (const auto& r : doc["resources"]) {
    std::string name = r.value("name", "");
    size_t slash = name.find('/');
    if (slash != std::string::npos) {
      if (name.substr(slash + 1) == "status") {
        with_status.insert(name.substr(0, slash));
      }
      continue;
    }
    ResourceInfo info;
    info.group = r.value("group", group);
    info.version = r.value("version", version);
    info.plural = name;
    info.singular = r.value("singularName", "");
    info.kind = r.value("kind", "");
    info.namespaced = r.value("namespaced", false);
    if (r.contains("shortNames") && r["shortNames"].is_array()) {
      for (const auto& s : r["shortNames"]) info.short_names.push_back(s);
    }
    if (r.contains("verbs") && r["verbs"].is_array()) {
      for (const auto& v : r["verbs"]) info.verbs.push_back(v);
    }
    if (info.singular.empty()) info.singular = absl::AsciiStrToLower(info.kind);
    out.push_back(std::move(info));
  }
  for (auto& info : out) info.has_status = with_status.count(info.plural) > 0;
  return out;
}

void Discovery::Invalidate() {
  absl::MutexLock lock(&mu_);
  loaded_ = false;
  groups_.clear();
  failed_.clear();
  resources_.clear();
}

// Discovery's callers resolve again on their own schedule (a pending
// handler, a watch waiting for its resource), so one failed request makes
// a refresh incomplete at once rather than holding it through the API
// client's retries (half a minute for a group that answers 503).
constexpr int kDiscoveryAttempts = 1;

absl::Status Discovery::RefreshLocked() {
  groups_.clear();
  failed_.clear();
  resources_.clear();
  // The core group.
  auto core = api_->Get("/api", kDiscoveryAttempts);
  if (!core.ok()) return core.status();
  json core_doc = json::parse(*core, nullptr, false);
  GroupInfo core_group;
  if (core_doc.is_object() && core_doc.contains("versions")) {
    for (const auto& v : core_doc["versions"]) core_group.versions.push_back(v);
  }
  if (core_group.versions.empty()) core_group.versions.push_back("v1");
  core_group.preferred_version = core_group.versions.front();
  groups_.push_back(core_group);
  // Named groups.
  auto apis = api_->Get("/apis", kDiscoveryAttempts);
  if (!apis.ok()) return apis.status();
  json apis_doc = json::parse(*apis, nullptr, false);
  if (!apis_doc.is_object() || !apis_doc.contains("groups")) {
    return absl::InvalidArgumentError(
        "discovery: /apis is not an APIGroupList");
  }
  for (const auto& g : apis_doc["groups"]) {
    GroupInfo gi;
    gi.name = g.value("name", "");
    if (g.contains("preferredVersion")) {
      gi.preferred_version = g["preferredVersion"].value("version", "");
    }
    if (g.contains("versions")) {
      for (const auto& v : g["versions"])
        gi.versions.push_back(v.value("version", ""));
    }
    if (gi.preferred_version.empty() && !gi.versions.empty()) {
      gi.preferred_version = gi.versions.front();
    }
    groups_.push_back(std::move(gi));
  }
  for (const auto& g : groups_) {
    for (const auto& v : g.versions) {
      const std::string path = g.name.empty()
                                   ? absl::StrCat("/api/", v)
                                   : absl::StrCat("/apis/", g.name, "/", v);
      auto list = api_->Get(path, kDiscoveryAttempts);
      if (!list.ok()) {
        // A group-version that does not answer (an aggregated API that is
        // down, an API server that is starting) must not hide every other
        // group; a name it could hold resolves as Unavailable, not NotFound.
        failed_.push_back({g.name, v, list.status()});
        continue;
      }
      auto parsed = ParseResourceList(g.name, v, *list);
      if (!parsed.ok()) {
        failed_.push_back({g.name, v, parsed.status()});
        continue;
      }
      resources_[absl::StrCat(g.name, "/", v)] = std::move(*parsed);
    }
  }
  loaded_ = true;
  return absl::OkStatus();
}

absl::StatusOr<ResourceInfo> Discovery::ResolveLocked(const std::string& name,
                                                      bool* not_found) {
  *not_found = false;
  std::vector<std::string> parts = absl::StrSplit(name, '.');
  const std::string base = parts[0];

  // (group, version-or-empty) pairs the name may denote.
  const auto wanted = Qualifiers(parts);

  std::vector<ResourceInfo> matches;
  for (const auto& g : groups_) {
    for (const auto& v : g.versions) {
      bool considered = false;
      if (wanted.empty()) {
        considered = v == g.preferred_version;
      } else {
        for (const auto& w : wanted) {
          if (w.first == g.name &&
              (w.second.empty() ? v == g.preferred_version : v == w.second)) {
            considered = true;
          }
        }
      }
      if (!considered) continue;
      auto it = resources_.find(absl::StrCat(g.name, "/", v));
      if (it == resources_.end()) continue;
      for (const auto& r : it->second) {
        if (NameMatches(r, base)) matches.push_back(r);
      }
    }
  }
  if (matches.empty()) {
    // A group-version that did not answer could hold it.
    for (const auto& f : failed_) {
      bool could = wanted.empty();
      for (const auto& w : wanted) {
        could |=
            w.first == f.group && (w.second.empty() || w.second == f.version);
      }
      if (could) {
        *not_found = true;  // A miss all the same: worth a refresh.
        return absl::UnavailableError(absl::StrCat(
            "cannot resolve '", name, "' yet: discovery of ",
            f.group.empty() ? "" : f.group + "/", f.version,
            " failed: ", absl::StripAsciiWhitespace(f.status.message())));
      }
    }
    *not_found = true;
    return absl::NotFoundError(
        absl::StrCat("unknown resource '", name,
                     "': the API server serves nothing by that name"));
  }
  if (matches.size() == 1) return matches.front();
  // As kubectl does: the core group wins over others of the same name.
  for (const auto& m : matches) {
    if (m.group.empty()) return m;
  }
  std::vector<std::string> names;
  names.reserve(matches.size());
  for (const auto& m : matches) names.push_back(m.FullName());
  return absl::InvalidArgumentError(
      absl::StrCat("ambiguous resource '", name, "': it could be ",
                   absl::StrJoin(names, ", "), "; qualify it with its group"));
}

absl::StatusOr<ResourceInfo> Discovery::Resolve(const std::string& name) {
  absl::MutexLock lock(&mu_);
  bool fresh = false;
  if (!loaded_) {
    absl::Status st = RefreshLocked();
    if (!st.ok()) return st;
    fresh = true;
  }
  bool not_found = false;
  auto r = ResolveLocked(name, &not_found);
  if (r.ok() || !not_found || fresh) return r;
  absl::Status st = RefreshLocked();
  if (!st.ok()) return st;
  return ResolveLocked(name, &not_found);
}

bool AbslParseFlag(absl::string_view text, ResourceNames* list,
                   std::string* error) {
  std::vector<std::string> names;
  if (!text.empty()) names = absl::StrSplit(text, ',');
  for (size_t i = 0; i < names.size(); ++i) {
    if (absl::StripAsciiWhitespace(names[i]).empty()) {
      *error = absl::StrCat("entry ", i + 1, " is empty");
      return false;
    }
  }
  list->names = std::move(names);
  return true;
}

std::string AbslUnparseFlag(const ResourceNames& list) {
  return absl::StrJoin(list.names, ",");
}

}  // namespace herald::kube
