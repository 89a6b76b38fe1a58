#include "server/engine/essence.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "server/engine/annotation_keys.h"

namespace herald::engine {
namespace {

using nlohmann::json;

const json& Null() {
  static const json* null = new json(nullptr);
  return *null;
}

void Cherrypick(const json& src, json& dst,
                const std::vector<std::string>& path) {
  const json* s = &src;
  for (const auto& part : path) {
    if (!s->is_object()) return;
    auto it = s->find(part);
    if (it == s->end()) return;
    s = &*it;
  }
  json* d = &dst;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    if (!d->is_object()) return;
    d = &(*d)[path[i]];
    if (d->is_null()) *d = json::object();
  }
  if (d->is_object()) (*d)[path.back()] = *s;
}

// Prefixes whose annotations belong to Kopf-based operators.
std::set<std::string> MarkedPrefixes(const json& annotations) {
  std::set<std::string> out;
  for (const auto& [key, value] : annotations.items()) {
    size_t slash = key.find('/');
    if (slash == std::string::npos) continue;
    std::string prefix = key.substr(0, slash);
    std::string name = key.substr(slash + 1);
    if (name == kManagedMarker || prefix == kKopfPrefix ||
        absl::EndsWith(prefix, std::string(".") + kKopfPrefix)) {
      out.insert(prefix);
    }
  }
  return out;
}

void RemoveEmptyStanzas(json& e) {
  auto meta = e.find("metadata");
  if (meta != e.end() && meta->is_object()) {
    for (const char* k : {"annotations", "labels"}) {
      auto it = meta->find(k);
      if (it != meta->end() && it->empty()) meta->erase(it);
    }
    if (meta->empty()) e.erase(meta);
  }
  auto status = e.find("status");
  if (status != e.end() && status->empty()) e.erase(status);
}

void DiffInto(const json& a, const json& b, std::vector<std::string>& path,
              Diff& out) {
  if (a == b) return;
  if (a.is_null()) {
    out.push_back({"add", path, a, b});
    return;
  }
  if (b.is_null()) {
    out.push_back({"remove", path, a, b});
    return;
  }
  if (a.is_object() && b.is_object()) {
    // nlohmann keeps object keys sorted.
    for (const auto& [k, v] : b.items()) {
      if (a.contains(k)) continue;
      path.push_back(k);
      DiffInto(Null(), v, path, out);
      path.pop_back();
    }
    for (const auto& [k, v] : a.items()) {
      if (b.contains(k)) continue;
      path.push_back(k);
      DiffInto(v, Null(), path, out);
      path.pop_back();
    }
    for (const auto& [k, v] : a.items()) {
      auto it = b.find(k);
      if (it == b.end()) continue;
      path.push_back(k);
      DiffInto(v, *it, path, out);
      path.pop_back();
    }
    return;
  }
  out.push_back({"change", path, a, b});
}

}  // namespace

std::vector<std::string> ParseFieldPath(const std::string& dotted) {
  if (dotted.empty()) return {};
  return absl::StrSplit(dotted, '.');
}

const json& Resolve(const json& value, const std::vector<std::string>& path) {
  const json* v = &value;
  for (const auto& part : path) {
    if (!v->is_object()) return Null();
    auto it = v->find(part);
    if (it == v->end()) return Null();
    v = &*it;
  }
  return *v;
}

json Essence(const json& body, const std::string& prefix,
             const std::vector<std::string>& extra_fields) {
  json e = body.is_object() ? body : json::object();
  e.erase("apiVersion");
  e.erase("kind");
  e.erase("metadata");
  e.erase("status");
  Cherrypick(body, e, {"metadata", "labels"});
  Cherrypick(body, e, {"metadata", "annotations"});
  auto meta = e.find("metadata");
  if (meta != e.end() && meta->contains("annotations") &&
      (*meta)["annotations"].is_object()) {
    json& annotations = (*meta)["annotations"];
    std::set<std::string> prefixes = MarkedPrefixes(annotations);
    if (!prefix.empty()) prefixes.insert(prefix);
    std::vector<std::string> drop;
    for (const auto& [key, value] : annotations.items()) {
      size_t slash = key.find('/');
      if (key == "kubectl.kubernetes.io/last-applied-configuration" ||
          (slash != std::string::npos &&
           prefixes.count(key.substr(0, slash)))) {
        drop.push_back(key);
      }
    }
    for (const auto& key : drop) annotations.erase(key);
  }
  for (const auto& field : extra_fields) {
    Cherrypick(body, e, ParseFieldPath(field));
  }
  RemoveEmptyStanzas(e);
  return e;
}

Diff ComputeDiff(const json& old_value, const json& new_value) {
  Diff out;
  std::vector<std::string> path;
  DiffInto(old_value, new_value, path, out);
  return out;
}

Diff ReduceDiff(const Diff& diff, const std::vector<std::string>& path) {
  Diff out;
  for (const auto& item : diff) {
    const auto& f = item.path;
    if (path.empty()) {
      out.push_back(item);
    } else if (f.size() >= path.size() &&
               std::equal(path.begin(), path.end(), f.begin())) {
      out.push_back({item.op,
                     std::vector<std::string>(f.begin() + path.size(), f.end()),
                     item.old_value, item.new_value});
    } else if (f.size() < path.size() &&
               std::equal(f.begin(), f.end(), path.begin())) {
      std::vector<std::string> tail(path.begin() + f.size(), path.end());
      Diff sub = ComputeDiff(Resolve(item.old_value, tail),
                             Resolve(item.new_value, tail));
      out.insert(out.end(), sub.begin(), sub.end());
    }
  }
  return out;
}

json DiffToJson(const Diff& diff) {
  json out = json::array();
  for (const auto& d : diff) {
    out.push_back(json::array({d.op, d.path, d.old_value, d.new_value}));
  }
  return out;
}

}  // namespace herald::engine
