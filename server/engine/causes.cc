#include "server/engine/causes.h"

#include <openssl/sha.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace herald::engine {

using nlohmann::json;

std::string Digest(const std::string& text) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), md);
  return absl::StrCat("sha256:",
                      absl::BytesToHexString(absl::string_view(
                          reinterpret_cast<const char*>(md), sizeof(md))));
}

std::string PurposeOf(Cause cause) {
  if (cause != Cause::kCreate && cause != Cause::kUpdate &&
      cause != Cause::kDelete && cause != Cause::kResume) {
    return "";
  }
  return std::string(CauseName(cause));
}

const json& MetaOf(const json& body) {
  static const json* empty = new json(json::object());
  auto it = body.find("metadata");
  return it != body.end() && it->is_object() ? *it : *empty;
}

bool Deleting(const json& body) {
  const json& m = MetaOf(body);
  auto d = m.find("deletionTimestamp");
  return d != m.end() && !d->is_null();
}

bool HasFinalizer(const json& body, const std::string& finalizer) {
  const json& f = Resolve(MetaOf(body), {"finalizers"});
  if (!f.is_array()) return false;
  return std::find(f.begin(), f.end(), json(finalizer)) != f.end();
}

absl::optional<std::string> ReadAnnotation(const json& body,
                                           const AnnotationKeys& keys,
                                           const std::string& key) {
  const json& ann = Resolve(MetaOf(body), {"annotations"});
  if (!ann.is_object()) return absl::nullopt;
  for (const auto& full : keys.Keys(key, body)) {
    auto it = ann.find(full);
    if (it != ann.end() && it->is_string()) return it->get<std::string>();
  }
  return absl::nullopt;
}

namespace {

// Whether a handler of `h`'s cause takes part in a cycle of `plan.cause`.
bool JoinsCycle(const Handler& h, const CausePlan& plan, bool first_sight) {
  // Handlers limited to a field pass Kopf's field filters (see
  // MatchesField); only update and field handlers need it to change.
  auto field_ok = [&] {
    return MatchesField(h, plan.old_essence, plan.new_essence);
  };
  switch (h.cause()) {
    case Cause::kCreate:
      return plan.cause == Cause::kCreate && field_ok();
    case Cause::kUpdate:
      return plan.cause == Cause::kUpdate && field_ok();
    case Cause::kField:
      return (plan.cause == Cause::kUpdate || plan.cause == Cause::kCreate) &&
             field_ok();
    case Cause::kDelete:
      return plan.cause == Cause::kDelete && field_ok();
    case Cause::kResume:
      // Resume handlers join the first cycle after start, unless that
      // cycle is a creation.
      return first_sight && plan.cause != Cause::kCreate &&
             plan.cause != Cause::kDelete && field_ok();
    default:
      return false;
  }
}

}  // namespace

CausePlan DetectCause(const json& body,
                      const std::vector<const Handler*>& handlers,
                      const ObjectFacts& facts, const AnnotationKeys& keys,
                      const std::string& finalizer) {
  CausePlan plan;
  bool any_match = false;
  bool any_changing = false;
  bool needs_finalizer = false;
  for (const Handler* h : handlers) {
    // Raw-event and index handlers keep no state on the object.
    if (h->cause() == Cause::kEvent || h->cause() == Cause::kIndex ||
        !MatchesMeta(*h, body)) {
      continue;
    }
    any_match = true;
    needs_finalizer |= h->needs_finalizer();
    any_changing |= h->cause() == Cause::kCreate ||
                    h->cause() == Cause::kUpdate ||
                    h->cause() == Cause::kDelete ||
                    h->cause() == Cause::kResume || h->cause() == Cause::kField;
  }
  // A daemon asked to stop holds the object until it is released.
  needs_finalizer |= facts.daemons_hold;
  if (!any_match) return plan;  // Stealth: no annotations at all.

  const bool deleting = Deleting(body);
  const bool has_finalizer = HasFinalizer(body, finalizer);
  if (!deleting && needs_finalizer && !has_finalizer) {
    plan.action = CausePlan::Action::kAddFinalizer;
    return plan;
  }
  if (!deleting && !needs_finalizer && has_finalizer) {
    plan.action = CausePlan::Action::kRemoveFinalizer;
    return plan;
  }

  // Timers and daemons alone have no causes: no diff-base, no progress,
  // only the finalizer, released at deletion below.
  if (!any_changing && !deleting) {
    bool idle_timers = false;
    for (const Handler* h : handlers) {
      idle_timers |=
          h->cause() == Cause::kTimer && h->spec.timer.idle.has_value();
    }
    if (idle_timers) {
      plan.action = CausePlan::Action::kTrackEssence;
      plan.new_essence = Essence(body, keys.prefix());
    }
    return plan;
  }

  json essence = Essence(body, keys.prefix());
  // The essence last handled, from the diff-base annotation.
  auto base = ReadAnnotation(body, keys, kDiffBaseKey);
  auto digest = ReadAnnotation(body, keys, kDigestKey);
  json old = nullptr;
  if (base) old = json::parse(*base, nullptr, false);
  if (!base && digest) {
    // A large object: the digest says whether anything changed; the old
    // essence is known if this sidecar handled it before (else null).
    if (*digest == Digest(essence.dump() + "\n")) {
      old = essence;
    } else if (facts.large_base != nullptr &&
               Digest(facts.large_base->dump() + "\n") == *digest) {
      old = *facts.large_base;
    }
    base = "";
  }
  if (deleting) {
    if (!has_finalizer) return plan;  // Free: nothing holds the object.
    if (facts.delete_done) {
      // Released later, when the daemons are; then removed.
      if (facts.daemons_hold) return plan;
      plan.action = CausePlan::Action::kRemoveFinalizer;
      return plan;
    }
    plan.cause = Cause::kDelete;
  } else if (!base || old.is_discarded()) {
    plan.cause = Cause::kCreate;
  } else if (old != essence) {
    plan.cause = Cause::kUpdate;
  } else if (facts.first_sight) {
    plan.cause = Cause::kResume;
  } else {
    return plan;  // Nothing changed that matters.
  }
  plan.action = CausePlan::Action::kCycle;
  // Every cause has them, as in Kopf (handlers with a field get them
  // narrowed to it).
  if (!base || old.is_discarded()) old = nullptr;
  plan.old_essence = std::move(old);
  plan.new_essence = std::move(essence);
  plan.diff = ComputeDiff(plan.old_essence, plan.new_essence);
  plan.purpose = PurposeOf(plan.cause);
  plan.essence_touched = plan.cause == Cause::kCreate ||
                         plan.cause == Cause::kUpdate || facts.first_sight;
  for (const Handler* h : handlers) {
    if (MatchesMeta(*h, body) && JoinsCycle(*h, plan, facts.first_sight)) {
      plan.handlers.push_back(h);
    }
  }
  return plan;
}

ProgressPlan PlanProgress(const json& body,
                          const std::vector<const Handler*>& handlers,
                          const std::string& purpose,
                          const AnnotationKeys& keys, absl::Time now) {
  ProgressPlan plan;
  auto read = [&](const std::string& id) {
    ProgressRecord rec;
    if (auto stored = ReadAnnotation(body, keys, id)) {
      auto parsed = DecodeProgress(*stored);
      if (parsed.ok()) rec = *parsed;
    }
    return rec;
  };
  for (const Handler* h : handlers) {
    ProgressRecord rec = read(h->id());
    if (rec.purpose.empty()) rec.purpose = purpose;
    for (const auto& child : rec.subrefs)
      plan.child_records[child] = read(child);
    if (!rec.finished()) {
      if (rec.delayed && *rec.delayed > now) {
        plan.wake = std::min(plan.wake, *rec.delayed);
      } else {
        plan.due.push_back(h);
      }
    }
    plan.records[h->id()] = std::move(rec);
  }
  return plan;
}

}  // namespace herald::engine
