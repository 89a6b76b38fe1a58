#include "server/election/lease.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace herald::election {
namespace {

using nlohmann::json;

std::string Collection(const std::string& ns) {
  return absl::StrCat("/apis/coordination.k8s.io/v1/namespaces/", ns,
                      "/leases");
}

// The string at `key` of `spec`, "" when absent or null.
absl::StatusOr<std::string> StringField(const json& spec, const char* key) {
  auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Lease: spec.", key, " is not a string"));
  }
  return it->get<std::string>();
}

absl::StatusOr<int> IntField(const json& spec, const char* key) {
  auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) return 0;
  if (!it->is_number_integer()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Lease: spec.", key, " is not an integer"));
  }
  return it->get<int>();
}

}  // namespace

std::string MicroTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<LeaseState> ParseLease(const std::string& text) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError("Lease: not a JSON object");
  }
  LeaseState out;
  auto meta = doc.find("metadata");
  if (meta == doc.end() || !meta->is_object() ||
      !meta->contains("resourceVersion") ||
      !(*meta)["resourceVersion"].is_string()) {
    return absl::InvalidArgumentError(
        "Lease: metadata.resourceVersion is missing");
  }
  out.resource_version = (*meta)["resourceVersion"].get<std::string>();
  auto spec_it = doc.find("spec");
  if (spec_it == doc.end() || spec_it->is_null()) return out;
  if (!spec_it->is_object()) {
    return absl::InvalidArgumentError("Lease: spec is not an object");
  }
  const json& spec = *spec_it;
  auto holder = StringField(spec, "holderIdentity");
  auto acquire = StringField(spec, "acquireTime");
  auto renew = StringField(spec, "renewTime");
  auto duration = IntField(spec, "leaseDurationSeconds");
  auto transitions = IntField(spec, "leaseTransitions");
  for (const absl::Status& st :
       {holder.status(), acquire.status(), renew.status(), duration.status(),
        transitions.status()}) {
    if (!st.ok()) return st;
  }
  out.record.holder = *holder;
  out.record.acquire_time = *acquire;
  out.record.renew_time = *renew;
  out.record.lease_duration_seconds = *duration;
  out.record.transitions = *transitions;
  return out;
}

bool IsConflict(const absl::Status& status) {
  return kube::HttpStatusOf(status) == 409;
}

Lease::Lease(kube::ApiClient* api, std::string ns, std::string name)
    : api_(api), ns_(std::move(ns)), name_(std::move(name)) {}

std::string Lease::Body(const LeaseRecord& r,
                        const std::string& resource_version) const {
  json spec = {{"holderIdentity", r.holder},
               {"leaseDurationSeconds", r.lease_duration_seconds},
               {"leaseTransitions", r.transitions}};
  if (!r.acquire_time.empty()) spec["acquireTime"] = r.acquire_time;
  if (!r.renew_time.empty()) spec["renewTime"] = r.renew_time;
  json meta = {{"name", name_}, {"namespace", ns_}};
  if (!resource_version.empty()) meta["resourceVersion"] = resource_version;
  return json{{"apiVersion", "coordination.k8s.io/v1"},
              {"kind", "Lease"},
              {"metadata", meta},
              {"spec", spec}}
      .dump();
}

absl::StatusOr<LeaseState> Lease::Send(const std::string& method,
                                       const std::string& target,
                                       std::string body,
                                       absl::Duration timeout) {
  kube::HttpRequest request;
  request.method = method;
  request.target = target;
  request.body = std::move(body);
  if (!request.body.empty()) request.content_type = "application/json";
  request.timeout = timeout;
  auto answer = api_->Request(request, /*max_attempts=*/1);
  if (!answer.ok()) return answer.status();
  return ParseLease(*answer);
}

absl::StatusOr<LeaseState> Lease::Get(absl::Duration timeout) {
  return Send("GET", absl::StrCat(Collection(ns_), "/", name_), "", timeout);
}

absl::StatusOr<LeaseState> Lease::Create(const LeaseRecord& record,
                                         absl::Duration timeout) {
  return Send("POST", Collection(ns_), Body(record, ""), timeout);
}

absl::StatusOr<LeaseState> Lease::Update(const LeaseRecord& record,
                                         const std::string& resource_version,
                                         absl::Duration timeout) {
  return Send("PUT", absl::StrCat(Collection(ns_), "/", name_),
              Body(record, resource_version), timeout);
}

}  // namespace herald::election
