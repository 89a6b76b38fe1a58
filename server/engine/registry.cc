#include "server/engine/registry.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/engine/essence.h"
#include "server/kube/label_selector.h"

namespace herald::engine {
namespace {

using nlohmann::json;

// Label and annotation keys follow Kubernetes' rules (annotation keys are
// checked lowercased, as the API server does): a filter on a key that no
// object can carry would never match.
absl::Status CheckMetaFilters(const std::map<std::string, MetaFilter>& filters,
                              bool labels) {
  const char* what = labels ? "label filter" : "annotation filter";
  for (const auto& [key, f] : filters) {
    if (key.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": empty key"));
    }
    const std::string why =
        kube::QualifiedNameError(labels ? key : absl::AsciiStrToLower(key));
    if (!why.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " '", key, "': not a valid ",
                       labels ? "label" : "annotation", " key: ", why));
    }
    if (f.match == MetaMatch::kUnspecified) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " '", key, "': match is unspecified"));
    }
    if (labels && f.match == MetaMatch::kEquals) {
      const std::string bad_value = kube::LabelValueError(f.value);
      if (!bad_value.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " '", key, "': value '", f.value,
                         "' is not a valid label value: ", bad_value));
      }
    }
  }
  return absl::OkStatus();
}

// A field path is dot-separated keys ("spec.size"), none of them empty.
absl::Status CheckFieldPath(const std::string& path, const char* what) {
  if (path.empty()) return absl::OkStatus();
  size_t n = 0;
  for (absl::string_view segment : absl::StrSplit(path, '.')) {
    ++n;
    if (segment.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " '", path, "': segment ", n,
          " is empty (a field path is dot-separated keys, e.g. spec.size)"));
    }
    if (absl::StrContains(segment, '[') || absl::StrContains(segment, ']')) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " '", path, "': segment ", n, " '", segment,
          "' has brackets: list indexes are not supported (a field path is "
          "dot-separated keys, e.g. spec.size)"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckValueFilter(const ValueFilter& f, const char* what) {
  if (f.match == ValueMatch::kEquals &&
      json::parse(f.value_json, nullptr, false).is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": value_json is not JSON: ", f.value_json));
  }
  return absl::OkStatus();
}

bool MetaMatches(const json& map, const std::string& key, const MetaFilter& f) {
  const bool present = map.is_object() && map.contains(key);
  switch (f.match) {
    case MetaMatch::kPresent:
      return present;
    case MetaMatch::kAbsent:
      return !present;
    case MetaMatch::kEquals:
      return present && map[key].is_string() && map[key] == f.value;
    default:
      return false;
  }
}

bool ValueMatches(const ValueFilter& f, const json& equals, const json& value) {
  switch (f.match) {
    case ValueMatch::kUnspecified:
      return true;
    case ValueMatch::kPresent:
      return !value.is_null();
    case ValueMatch::kAbsent:
      return value.is_null();
    case ValueMatch::kEquals:
      return value == equals;
    default:
      return false;
  }
}

json ParseEquals(const ValueFilter& f) {
  if (f.match != ValueMatch::kEquals) return nullptr;
  return json::parse(f.value_json, nullptr, false);
}

}  // namespace

absl::Duration Handler::backoff() const {
  return spec.backoff.value_or(absl::Seconds(60));
}

absl::Status ValidateSpec(const HandlerSpec& spec) {
  if (spec.id.empty()) return absl::InvalidArgumentError("id is empty");
  const bool activity = spec.cause == Cause::kStartup ||
                        spec.cause == Cause::kCleanup ||
                        spec.cause == Cause::kProbe;
  if (activity && !spec.resource.empty()) {
    return absl::InvalidArgumentError(
        "an activity (startup, cleanup, probe) has no resource");
  }
  if (!activity && spec.resource.empty()) {
    return absl::InvalidArgumentError("resource is empty");
  }
  switch (spec.cause) {
    case Cause::kStartup:
    case Cause::kCleanup:
    case Cause::kProbe:
    case Cause::kCreate:
    case Cause::kUpdate:
    case Cause::kDelete:
    case Cause::kResume:
    case Cause::kField:
    case Cause::kEvent:
      break;
    case Cause::kTimer:
      if (spec.timer.interval <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError("a timer needs a positive interval");
      }
      break;
    case Cause::kIndex:
      if (spec.index && spec.index->label.empty() &&
          spec.index->field.empty()) {
        return absl::InvalidArgumentError(
            "a declarative index needs a label or a field");
      }
      break;
    case Cause::kDaemon:
      break;
    default:
      return absl::InvalidArgumentError("cause is unspecified");
  }
  if (spec.index && spec.cause != Cause::kIndex) {
    return absl::InvalidArgumentError("index options are for index handlers");
  }
  if (spec.cause == Cause::kField && spec.field.empty()) {
    return absl::InvalidArgumentError("a field handler needs a field");
  }
  // As in Kopf: every resource-changing handler may be limited to a field;
  // old and new values are about a change, which only update and field
  // handlers need.
  const bool changing =
      spec.cause == Cause::kCreate || spec.cause == Cause::kUpdate ||
      spec.cause == Cause::kDelete || spec.cause == Cause::kResume ||
      spec.cause == Cause::kField;
  if (!spec.field.empty() && !changing) {
    return absl::InvalidArgumentError(
        "field is only for create, update, delete, resume and field handlers");
  }
  const bool needs_change =
      spec.cause == Cause::kUpdate || spec.cause == Cause::kField;
  if (!needs_change && spec.old_filter.match != ValueMatch::kUnspecified) {
    return absl::InvalidArgumentError(
        "old_filter is only for update and field handlers");
  }
  if (!needs_change && spec.new_filter.match != ValueMatch::kUnspecified) {
    return absl::InvalidArgumentError(
        "new_filter is only for update and field handlers");
  }
  absl::Status st = CheckMetaFilters(spec.labels, /*labels=*/true);
  if (st.ok()) st = CheckMetaFilters(spec.annotations, /*labels=*/false);
  if (st.ok()) st = CheckFieldPath(spec.field, "field");
  const IndexOptions index = spec.index.value_or(IndexOptions());
  if (st.ok()) st = CheckFieldPath(index.field, "index field");
  if (st.ok() && !index.label.empty()) {
    const std::string why = kube::QualifiedNameError(index.label);
    if (!why.empty()) {
      st = absl::InvalidArgumentError(absl::StrCat(
          "index label '", index.label, "': not a valid label key: ", why));
    }
  }
  if (st.ok()) st = CheckValueFilter(spec.value_filter, "value_filter");
  if (st.ok()) st = CheckValueFilter(spec.old_filter, "old_filter");
  if (st.ok()) st = CheckValueFilter(spec.new_filter, "new_filter");
  return st;
}

bool MatchesMeta(const Handler& h, const json& body) {
  const json& meta = body.is_object() && body.contains("metadata")
                         ? body["metadata"]
                         : json::object();
  const json& labels = Resolve(meta, {"labels"});
  const json& annotations = Resolve(meta, {"annotations"});
  for (const auto& [key, f] : h.spec.labels) {
    if (!MetaMatches(labels, key, f)) return false;
  }
  for (const auto& [key, f] : h.spec.annotations) {
    if (!MetaMatches(annotations, key, f)) return false;
  }
  return true;
}

bool MatchesField(const Handler& h, const json& old_essence,
                  const json& new_essence) {
  if (h.field.empty()) return true;
  const json& o = Resolve(old_essence, h.field);
  const json& n = Resolve(new_essence, h.field);
  const auto& s = h.spec;
  // Kopf's _matches_field_values: the old or the new value passes `value`;
  // without one, the field must be there in either.
  if (s.value_filter.match == ValueMatch::kUnspecified) {
    if (o.is_null() && n.is_null()) return false;
  } else if (!ValueMatches(s.value_filter, h.value_equals, o) &&
             !ValueMatches(s.value_filter, h.value_equals, n)) {
    return false;
  }
  // Kopf's _matches_field_changes, for update and field handlers only: the
  // field changed, and its old and new values pass `old` and `new`.
  if (h.cause() != Cause::kUpdate && h.cause() != Cause::kField) {
    return true;
  }
  if (o == n) return false;
  return ValueMatches(s.old_filter, h.old_equals, o) &&
         ValueMatches(s.new_filter, h.new_equals, n);
}

namespace {

// A handler id registered again (a process reconnects, or another process
// serves it too) must come with the same spec.
absl::Status SameSpec(const HandlerSpec& registered, const HandlerSpec& spec) {
  if (registered == spec) {
    return absl::OkStatus();
  }
  return absl::AlreadyExistsError(absl::StrCat(
      "id '", spec.id, "' is already registered with a different spec"));
}

}  // namespace

absl::Status Registry::Add(const HandlerSpec& spec,
                           const kube::ResourceInfo& resource) {
  absl::Status st = ValidateSpec(spec);
  if (!st.ok()) return st;
  auto it = handlers_.find(spec.id);
  if (it != handlers_.end()) {
    return SameSpec(it->second->spec, spec);
  }
  auto h = std::make_unique<Handler>();
  h->spec = spec;
  h->resource = resource;
  h->field = ParseFieldPath(spec.field);
  if (spec.index) h->index_field = ParseFieldPath(spec.index->field);
  h->value_equals = ParseEquals(spec.value_filter);
  h->old_equals = ParseEquals(spec.old_filter);
  h->new_equals = ParseEquals(spec.new_filter);
  h->order = next_order_++;
  auto& list = by_resource_[h->resource.FullName()];
  list.push_back(h.get());
  std::sort(list.begin(), list.end(), [](const Handler* a, const Handler* b) {
    return a->order < b->order;
  });
  handlers_.emplace(spec.id, std::move(h));
  return absl::OkStatus();
}

absl::Status Registry::AddPending(const HandlerSpec& spec, std::string reason,
                                  absl::Time now) {
  absl::Status st = ValidateSpec(spec);
  if (!st.ok()) return st;
  auto it = handlers_.find(spec.id);
  if (it != handlers_.end()) {
    return SameSpec(it->second->spec, spec);  // Resolved already.
  }
  auto p = pending_.find(spec.id);
  if (p != pending_.end()) {
    st = SameSpec(p->second.spec, spec);
    if (st.ok()) p->second.reason = std::move(reason);
    return st;
  }
  pending_.emplace(spec.id, PendingHandler{spec, std::move(reason), now});
  return absl::OkStatus();
}

std::vector<std::string> Registry::Resolve(
    const std::string& name, const kube::ResourceInfo& resource,
    std::vector<std::string>* conflicts) {
  std::vector<std::string> ids;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.spec.resource != name) {
      ++it;
      continue;
    }
    absl::Status st = Add(it->second.spec, resource);
    if (st.ok()) {
      ids.push_back(it->first);
    } else if (conflicts != nullptr) {
      conflicts->push_back(std::string(st.message()));
    }
    it = pending_.erase(it);
  }
  return ids;
}

void Registry::SetPendingReason(const std::string& name,
                                const std::string& reason) {
  for (auto& [id, p] : pending_) {
    if (p.spec.resource == name) p.reason = reason;
  }
}

bool Registry::HasPendingFor(const kube::ResourceInfo& resource) const {
  for (const auto& [id, p] : pending_) {
    if (kube::CouldDenote(p.spec.resource, resource)) return true;
  }
  return false;
}

const Handler* Registry::Find(const std::string& id) const {
  auto it = handlers_.find(id);
  return it == handlers_.end() ? nullptr : it->second.get();
}

const std::vector<const Handler*>& Registry::ForResource(
    const std::string& full_name) const {
  static const std::vector<const Handler*>* none =
      new std::vector<const Handler*>();
  auto it = by_resource_.find(full_name);
  return it == by_resource_.end() ? *none : it->second;
}

std::vector<const Handler*> Registry::All() const {
  std::vector<const Handler*> out;
  for (const auto& [id, h] : handlers_) out.push_back(h.get());
  return out;
}

}  // namespace herald::engine
