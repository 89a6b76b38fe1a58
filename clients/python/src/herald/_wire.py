"""The wire form of the client's values: herald.v1 messages to and from what
handlers see.

Decoding: a Delivery into the keyword arguments it determines (body, old,
new, diff, indices, ...) and its memo. Encoding: registered handlers into
HandlerSpecs; results, patches, memo changes and Events into the
ObjectChanges of an Outcome or of InterimChanges; errors into outcome
messages. Functions of their arguments only: no I/O, no state.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Iterable

from google.protobuf import duration_pb2

from herald.registry import Handler
from herald.structs import ABSENT, PRESENT, ErrorsMode, Resource, merge_patch_between
from herald.typedefs import Body, Diff, Reason
from herald.v1 import handler_pb2 as pb
from herald.v1 import resource_pb2

_CAUSE = resource_pb2.Cause
# The `reason` keyword argument of each cause, as Kopf names it.
REASONS = {_CAUSE.Value(name): reason for name, reason in (
    ("CAUSE_CREATE", "create"), ("CAUSE_UPDATE", "update"), ("CAUSE_DELETE", "delete"),
    ("CAUSE_RESUME", "resume"), ("CAUSE_FIELD", "update"), ("CAUSE_EVENT", "event"),
    ("CAUSE_TIMER", "timer"), ("CAUSE_INDEX", "index"), ("CAUSE_DAEMON", "daemon"),
    ("CAUSE_STARTUP", "startup"), ("CAUSE_CLEANUP", "cleanup"), ("CAUSE_PROBE", "probe"))}
# Kopf's Reason for the causes that have one.
_KOPF_REASONS = {r.value: r for r in Reason}
# Causes whose handlers the sidecar filters by a field (others: the client).
FIELD_CAUSES = ("CAUSE_CREATE", "CAUSE_UPDATE", "CAUSE_DELETE", "CAUSE_RESUME", "CAUSE_FIELD")
# Causes of the operator rather than of an object.
ACTIVITIES = ("CAUSE_STARTUP", "CAUSE_CLEANUP", "CAUSE_PROBE")
_ACTIVITY_CAUSES = frozenset(_CAUSE.Value(name) for name in ACTIVITIES)
# The longest outcome message: one error cannot fill the stream.
MESSAGE_LIMIT = 4096
_UTC = datetime.timezone.utc


def duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromMilliseconds(int(seconds * 1000))
    return d


def reason(e: BaseException) -> str:
    """An exception as the reason of an outcome: its type and message."""
    try:
        text = str(e)
    except Exception:  # noqa: BLE001 - a broken __str__ still leaves the type
        text = "(no message)"
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def cut(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """A message for an outcome, cut to `limit` characters."""
    return message if len(message) <= limit else message[:limit - 3] + "..."


# --- registration ------------------------------------------------------------


def _match(want: Any, target, matches, set_value) -> None:
    """One filter of a HandlerSpec: PRESENT, ABSENT or an equal value, with
    `matches` the enum's (present, absent, equals) values."""
    present, absent, equals = matches
    if want is PRESENT:
        target.match = present
    elif want is ABSENT:
        target.match = absent
    else:
        target.match = equals
        set_value(target, want)


_META_MATCHES = (pb.META_MATCH_PRESENT, pb.META_MATCH_ABSENT, pb.META_MATCH_EQUALS)
_VALUE_MATCHES = (pb.VALUE_MATCH_PRESENT, pb.VALUE_MATCH_ABSENT, pb.VALUE_MATCH_EQUALS)


def _set_meta_value(target, want: Any) -> None:
    target.value = str(want)


def _set_json_value(target, want: Any) -> None:
    target.value_json = json.dumps(want)


def _filter_set(h: Handler, name: str) -> bool:
    return name not in h._unset and getattr(h, name) is not None


def client_filtered(h: Handler) -> bool:
    """Whether the client decides part of the handler's match: a `when`
    callback, callable label, annotation or value filters, or a field filter
    on a handler the sidecar does not filter by field (Kopf's semantics)."""
    return (h.when is not None
            or any(callable(v) for v in (*h.labels.values(), *h.annotations.values()))
            or any(callable(getattr(h, n)) for n in ("value", "old", "new") if _filter_set(h, n))
            or bool(h.field and h.cause not in FIELD_CAUSES))


def handler_spec(h: Handler, index_ids: tuple = ()) -> pb.HandlerSpec:
    """The wire form of a registered handler; every handler but the indices
    and the activities asks for the registry's indices `index_ids`.
    Callable label and annotation filters stay in the client."""
    field = h.field if h.cause in FIELD_CAUSES else ""
    s = pb.HandlerSpec(id=h.id, resource=h.resource, cause=_CAUSE.Value(h.cause),
                       field=field, optional=h.optional, has_when=client_filtered(h))
    for filters, targets in ((h.labels, s.labels), (h.annotations, s.annotations)):
        for key, want in filters.items():
            if not callable(want):
                _match(want, targets[key], _META_MATCHES, _set_meta_value)
    # Old and new are about a change: update and field handlers (create ones
    # compare with no old value); delete and resume handlers have a value
    # filter only, with a field. Callable filters stay in the client (see
    # client_filtered).
    names = (("value", "old", "new") if h.cause in ("CAUSE_UPDATE", "CAUSE_FIELD", "CAUSE_CREATE")
             else ("value",) if field else ())
    for name, target in (("value", s.value_filter), ("old", s.old_filter),
                         ("new", s.new_filter)):
        if name in names and name not in h._unset and not callable(getattr(h, name)):
            _match(getattr(h, name), target, _VALUE_MATCHES, _set_json_value)
    if h.retries is not None:
        s.retries = h.retries
    if h.timeout is not None:
        s.timeout.CopyFrom(duration(h.timeout))
    if h.backoff is not None:
        s.backoff.CopyFrom(duration(h.backoff))
    if h.cause != "CAUSE_INDEX" and h.cause not in ACTIVITIES:
        s.indices.extend(index_ids)
    if h.index_by is not None:
        if h.index_by.get("label") is not None:
            s.index.label = h.index_by["label"]
        else:
            s.index.field = h.index_by["field"]
    if h.daemon is not None:
        if h.daemon.get("initial_delay"):
            s.daemon.initial_delay.CopyFrom(duration(h.daemon["initial_delay"]))
        if h.daemon.get("cancellation_backoff") is not None:
            s.daemon.cancellation_backoff.CopyFrom(duration(h.daemon["cancellation_backoff"]))
        if h.daemon.get("cancellation_timeout") is not None:
            s.daemon.cancellation_timeout.CopyFrom(duration(h.daemon["cancellation_timeout"]))
    if h.timer is not None:
        s.timer.interval.CopyFrom(duration(h.timer["interval"]))
        if h.timer.get("initial_delay"):
            s.timer.initial_delay.CopyFrom(duration(h.timer["initial_delay"]))
        if h.timer.get("idle"):
            s.timer.idle.CopyFrom(duration(h.timer["idle"]))
        s.timer.sharp = bool(h.timer.get("sharp"))
    if h.errors is not None:
        mode = h.errors.value if isinstance(h.errors, ErrorsMode) else str(h.errors)
        s.errors = pb.ErrorsMode.Value(mode)
    return s


# --- indices -----------------------------------------------------------------


def _jsonable_key(key: Any) -> Any:
    return [_jsonable_key(k) for k in key] if isinstance(key, tuple) else key


def _python_key(key: Any) -> Any:
    return tuple(_python_key(k) for k in key) if isinstance(key, list) else key


def encode_index_result(result: Any) -> str:
    """An index handler's result as the [key, value] pairs the sidecar keeps."""
    if result is None:
        pairs: list = []
    elif isinstance(result, dict):
        pairs = [[_jsonable_key(k), v] for k, v in result.items()]
    else:
        pairs = [[None, result]]
    return json.dumps(pairs)


def decode_index(text: str) -> dict:
    """An index from a delivery: key -> list of values."""
    return {_python_key(k): list(vs) for k, vs in json.loads(text)}


# --- deliveries --------------------------------------------------------------


def is_activity(d: pb.Delivery) -> bool:
    """Whether the delivery is for the operator (startup, cleanup, probe)."""
    return d.cause in _ACTIVITY_CAUSES


def object_key(d: pb.Delivery) -> str:
    """The delivery's object as the key of its local memo: its uid, else
    namespace/name."""
    return d.object.uid or f"{d.object.namespace}/{d.object.name}"


def log_key(d: pb.Delivery) -> str:
    """The delivery's object as its log lines name it: namespace/name, or the
    name, or (for activities) the handler id."""
    return (f"{d.object.namespace}/{d.object.name}" if d.object.namespace
            else d.object.name or d.handler_id)


def log_context(d: pb.Delivery) -> dict:
    """What the delivery's log records are about, as the sidecar's JSON log
    lines name it: namespace, name, resource ("kopfexamples.v1.kopf.dev",
    "pods.v1") and the handler's id, those the delivery has."""
    r = d.resource
    resource = ".".join(p for p in (r.plural, r.version, r.group) if p) if r.plural else ""
    fields = {"namespace": d.object.namespace, "name": d.object.name, "resource": resource,
              "id": d.handler_id}
    return {k: v for k, v in fields.items() if v}


def decode_memo(d: pb.Delivery) -> Any:
    """The delivery's shared memo (the sidecar's JSON memo of the object)."""
    return json.loads(d.memo_json) if d.memo_json else {}


def decode_kwargs(d: pb.Delivery) -> dict:
    """The keyword arguments a delivery determines by itself: the object and
    its parts, old/new/diff, reason, retry, timing, resource, indices, and
    what events and daemons get. Raises what json raises on a body that is
    not JSON or nested too deep."""
    body = Body(json.loads(d.body_json) if d.body_json else {})
    meta = body.metadata
    now = datetime.datetime.now(_UTC)
    started = d.started.ToDatetime(tzinfo=_UTC) if d.HasField("started") else now
    r = d.resource
    kwargs = dict(
        body=body, spec=body.spec, meta=meta, metadata=meta,
        status=body.status, name=meta.get("name"),
        namespace=meta.get("namespace"), labels=meta.get("labels", {}),
        annotations=meta.get("annotations", {}), uid=meta.get("uid"),
        retry=d.retry, started=started, runtime=now - started,
        old=json.loads(d.old_json) if d.old_json else None,
        new=json.loads(d.new_json) if d.new_json else None,
        diff=Diff((op, tuple(path), o, n) for op, path, o, n in
                  (json.loads(d.diff_json) if d.diff_json else ())),
        reason=_KOPF_REASONS.get(REASONS.get(d.cause, ""), REASONS.get(d.cause, "")),
        resource=Resource(r.group, r.version, r.plural, r.kind, r.namespaced),
    )
    for name, text in d.indices_json.items():
        kwargs[name] = decode_index(text)
    if d.cause == resource_pb2.CAUSE_EVENT:
        kwargs["type"] = d.event_type
        kwargs["event"] = {"type": d.event_type, "object": body}
    elif d.cause == resource_pb2.CAUSE_DAEMON:
        kwargs["restarted"] = d.restarted
    return kwargs


# --- outcomes and changes ----------------------------------------------------


def _json(what: str, value: Any, failures: list) -> str:
    """`value` as JSON; "" and a line in `failures` naming `what` when it is
    not serialisable, circular or too deep."""
    try:
        return json.dumps(value)
    except Exception as e:  # noqa: BLE001 - any failure is named in the outcome
        failures.append(f"the {what} cannot be encoded as JSON: {reason(e)}")
        return ""


def encode_result(result: Any, index: bool, failures: list) -> str:
    """A handler's result as an outcome's result_json (an index's as its
    pairs); "" and a line in `failures` when it cannot be encoded."""
    if not index:
        return _json("result", result, failures)
    try:
        return encode_index_result(result)
    except Exception as e:  # noqa: BLE001 - as _json
        failures.append(f"the result cannot be encoded as JSON: {reason(e)}")
        return ""


def encode_changes(changes: pb.ObjectChanges, patch: dict, memo_before: Any, memo: Any,
                   failures: list) -> bool:
    """Fills `changes` with the patch (the status apart) and the merge patch
    from `memo_before` to `memo`. What cannot be encoded is left out and
    named in `failures`; the rest is still filled. Returns whether the memo
    changed."""
    if getattr(patch, "fns", None):
        failures.append("Patch.fns (JSON patch functions) are not supported: "
                        "the sidecar applies merge patches; set fields on the patch instead")
    body_patch = dict(patch)
    status_patch = body_patch.pop("status", None)
    if body_patch:
        changes.patch_json = _json("patch", body_patch, failures)
    if status_patch:
        changes.status_patch_json = _json("status patch", status_patch, failures)
    try:
        memo_patch = merge_patch_between(memo_before, memo)
    except Exception as e:  # noqa: BLE001 - a memo value that cannot be compared
        failures.append(f"the memo patch cannot be encoded as JSON: {reason(e)}")
        return False
    if not memo_patch:
        return False
    changes.memo_patch_json = _json("memo patch", memo_patch, failures)
    return True


def encode_events(changes: pb.ObjectChanges,
                  events: Iterable[tuple[str, str, str]]) -> None:
    """Adds Events, each (NORMAL or WARNING, reason, message), to `changes`."""
    for etype, why, message in events:
        changes.events.add(type=pb.EventType.Value("EVENT_TYPE_" + etype),
                           reason=why, message=message)


def failed_outcome(delivery_id: str, message: str) -> pb.ConnectRequest:
    """The outcome of a delivery the client failed to handle: an unexpected
    error."""
    return pb.ConnectRequest(outcome=pb.Outcome(
        delivery_id=delivery_id, status=pb.OUTCOME_STATUS_UNEXPECTED_ERROR,
        message=cut(message)))
