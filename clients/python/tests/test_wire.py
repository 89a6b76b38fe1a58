"""Unit tests of herald._wire: herald.v1 messages to and from Python values."""

import datetime
import json

import pytest

import herald
from herald import _wire
from herald._wire import (cut, decode_index, decode_kwargs, decode_memo, encode_changes,
                          encode_events, encode_index_result, encode_result, handler_spec,
                          reason)
from herald.v1 import handler_pb2 as pb
from herald.v1 import resource_pb2


def test_ids_resources_and_filters_as_kopf():
    reg = herald.Registry()

    @herald.on.field("kopf.dev", "v1", "kopfexamples", field="spec.size", new=3,
                     labels={"app": "web", "skip": herald.ABSENT}, registry=reg)
    def sized(**_):
        pass

    @herald.on.delete("KopfExample.kopf.dev", optional=True, retries=3, timeout=30,
                      backoff=5, errors=herald.ErrorsMode.PERMANENT, registry=reg)
    def gone(**_):
        pass

    assert reg.get(f"{sized.__qualname__}/spec.size") is not None  # Kopf's ids.
    s = handler_spec(reg.get(f"{sized.__qualname__}/spec.size"))
    assert s.resource == "kopfexamples.v1.kopf.dev"
    assert s.cause == resource_pb2.CAUSE_FIELD
    assert s.field == "spec.size"
    assert s.new_filter.match == pb.VALUE_MATCH_EQUALS and json.loads(s.new_filter.value_json) == 3
    assert s.value_filter.match == pb.VALUE_MATCH_UNSPECIFIED
    assert s.labels["app"].match == pb.META_MATCH_EQUALS and s.labels["app"].value == "web"
    assert s.labels["skip"].match == pb.META_MATCH_ABSENT
    d = handler_spec(reg.get(gone.__qualname__))
    assert d.resource == "KopfExample.kopf.dev" and d.optional
    assert d.retries == 3 and d.timeout.seconds == 30 and d.backoff.seconds == 5
    assert d.errors == pb.ERRORS_MODE_PERMANENT
    with pytest.raises(ValueError, match="already registered"):
        herald.on.delete("kopfexamples", registry=reg)(gone)


def test_index_results_round_trip_with_any_keys():
    assert json.loads(encode_index_result({"a": 1, ("x", 2): "t"})) == [["a", 1], [["x", 2], "t"]]
    assert json.loads(encode_index_result("bare")) == [[None, "bare"]]
    assert encode_index_result(None) == "[]"
    assert decode_index('[["a",[1,2]],[["x",2],["t"]],[null,["bare"]]]') == \
        {"a": [1, 2], ("x", 2): ["t"], None: ["bare"]}
    reg = herald.Registry()
    herald.index("kopfexamples", id="idx", registry=reg)(lambda **_: None)
    herald.on.create("kopfexamples", id="c", registry=reg)(lambda **_: None)
    ids = tuple(h.id for h in reg.handlers if h.cause == "CAUSE_INDEX")
    assert list(handler_spec(reg.get("c"), ids).indices) == ["idx"]
    assert list(handler_spec(reg.get("idx"), ids).indices) == []


def test_specs_of_daemons_activities_and_declarative_indices():
    reg = herald.Registry()

    @herald.daemon("kopfexamples", id="watcher", initial_delay=2, cancellation_backoff=1.5,
                   cancellation_timeout=10, registry=reg)
    async def watcher(stopped, **_):
        pass

    @herald.on.startup(id="boot", retries=3, registry=reg)
    def boot(**_):
        pass

    @herald.on.probe(id="alive", registry=reg)
    def alive(**_):
        return True

    herald.declare_index("pods", id="by_node", field=["spec", "nodeName"], registry=reg)
    with pytest.raises(TypeError):
        herald.declare_index("pods", id="both", label="a", field="b", registry=reg)
    d = handler_spec(reg.get("watcher"), ("by_node",))
    assert d.cause == resource_pb2.CAUSE_DAEMON and list(d.indices) == ["by_node"]
    assert d.daemon.initial_delay.seconds == 2 and d.daemon.cancellation_backoff.nanos == 500000000
    assert d.daemon.cancellation_timeout.seconds == 10
    s = handler_spec(reg.get("boot"), ("by_node",))
    assert s.resource == "" and s.cause == resource_pb2.CAUSE_STARTUP and s.retries == 3
    assert list(s.indices) == []  # Activities get no indices.
    assert handler_spec(reg.get("alive")).cause == resource_pb2.CAUSE_PROBE
    i = handler_spec(reg.get("by_node"))
    assert i.cause == resource_pb2.CAUSE_INDEX and i.index.field == "spec.nodeName"


def test_value_filters_are_sent_only_for_causes_with_old_and_new():
    reg = herald.Registry()
    herald.on.update("kopfexamples", id="u", old=herald.PRESENT, new=herald.ABSENT,
                     value=None, registry=reg)(lambda **_: None)
    herald.on.update("kopfexamples", id="unset", registry=reg)(lambda **_: None)
    s = handler_spec(reg.get("u"))
    assert s.old_filter.match == pb.VALUE_MATCH_PRESENT
    assert s.new_filter.match == pb.VALUE_MATCH_ABSENT
    # None is a value to compare with (JSON null), not "no filter".
    assert s.value_filter.match == pb.VALUE_MATCH_EQUALS and s.value_filter.value_json == "null"
    s = handler_spec(reg.get("unset"))
    assert (s.old_filter.match, s.new_filter.match, s.value_filter.match) == \
        (pb.VALUE_MATCH_UNSPECIFIED,) * 3
    # A delete handler has no old and new: its value filters are never sent.
    h = herald.Registry()
    herald.on.delete("kopfexamples", id="d", registry=h)(lambda **_: None)
    h.get("d").new = 3
    assert handler_spec(h.get("d")).new_filter.match == pb.VALUE_MATCH_UNSPECIFIED


def test_meta_filters_send_values_as_strings_and_keep_callables_in_the_client():
    reg = herald.Registry()
    herald.on.create("kopfexamples", id="h", labels={"n": 3, "p": herald.PRESENT},
                     annotations={"c": lambda value, **_: True}, registry=reg)(lambda **_: None)
    s = handler_spec(reg.get("h"))
    assert s.labels["n"].match == pb.META_MATCH_EQUALS and s.labels["n"].value == "3"
    assert s.labels["p"].match == pb.META_MATCH_PRESENT and s.labels["p"].value == ""
    assert set(s.annotations) == set() and s.has_when


def test_timers_and_errors_modes_are_encoded():
    reg = herald.Registry()
    herald.timer("kopfexamples", id="t", interval=2.5, initial_delay=1, idle=30, sharp=True,
                 errors="ERRORS_MODE_IGNORED", registry=reg)(lambda **_: None)
    s = handler_spec(reg.get("t"))
    assert s.cause == resource_pb2.CAUSE_TIMER
    assert (s.timer.interval.seconds, s.timer.interval.nanos) == (2, 500000000)
    assert s.timer.initial_delay.seconds == 1 and s.timer.idle.seconds == 30 and s.timer.sharp
    assert s.errors == pb.ERRORS_MODE_IGNORED
    reg.get("t").errors = "ERRORS_MODE_SOMETIMES"
    with pytest.raises(ValueError):
        handler_spec(reg.get("t"))


def _delivery(cause=resource_pb2.CAUSE_UPDATE, **kw):
    d = pb.Delivery(delivery_id="d-1", handler_id="h", cause=cause, **kw)
    d.object.namespace, d.object.name, d.object.uid = "ns", "x", "u1"
    return d


def test_a_delivery_decodes_into_kopfs_keyword_arguments():
    body = {"metadata": {"name": "x", "namespace": "ns", "uid": "u1", "labels": {"a": "b"},
                         "annotations": {"n": "v"}},
            "spec": {"size": 2}, "status": {"phase": "up"}}
    d = _delivery(body_json=json.dumps(body), old_json='{"spec":{"size":1}}',
                  new_json='{"spec":{"size":2}}', diff_json='[["change",["spec","size"],1,2]]',
                  retry=4, memo_json='{"k":1}',
                  indices_json={"by_app": '[["web",[1]],[["ns","x"],[2,3]]]'})
    d.resource.group, d.resource.version, d.resource.plural = "kopf.dev", "v1", "kopfexamples"
    d.resource.kind, d.resource.namespaced = "KopfExample", True
    d.started.FromDatetime(datetime.datetime(2026, 1, 2, 3, 4, 5))
    kw = decode_kwargs(d)
    assert kw["body"] == body and kw["spec"] == {"size": 2} and kw["status"] == {"phase": "up"}
    assert kw["meta"] is kw["metadata"] is kw["body"]["metadata"]
    assert (kw["name"], kw["namespace"], kw["uid"]) == ("x", "ns", "u1")
    assert kw["labels"] == {"a": "b"} and kw["annotations"] == {"n": "v"}
    assert kw["old"] == {"spec": {"size": 1}} and kw["new"] == {"spec": {"size": 2}}
    assert kw["diff"] == (("change", ("spec", "size"), 1, 2),)
    assert kw["reason"] == "update" and kw["retry"] == 4
    assert kw["resource"] == herald.Resource("kopf.dev", "v1", "kopfexamples", "KopfExample", True)
    assert kw["resource"].api_version == "kopf.dev/v1"
    assert kw["started"] == datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert kw["runtime"] > datetime.timedelta(0)
    assert kw["by_app"] == {"web": [1], ("ns", "x"): [2, 3]}
    assert "type" not in kw and "event" not in kw and "restarted" not in kw
    assert decode_memo(d) == {"k": 1}


def test_an_empty_delivery_decodes_into_empty_values():
    kw = decode_kwargs(_delivery(cause=resource_pb2.CAUSE_STARTUP))
    assert kw["body"] == {} and kw["spec"] == {} and kw["labels"] == {} and kw["name"] is None
    assert kw["old"] is None and kw["new"] is None and kw["diff"] == ()
    assert kw["reason"] == "startup" and kw["runtime"] < datetime.timedelta(seconds=5)
    assert decode_memo(_delivery()) == {}


def test_events_and_daemons_get_their_own_arguments():
    d = _delivery(cause=resource_pb2.CAUSE_EVENT, body_json='{"metadata":{"name":"x"}}',
                  event_type="DELETED")
    kw = decode_kwargs(d)
    assert kw["type"] == "DELETED" and kw["reason"] == "event"
    assert kw["event"] == {"type": "DELETED", "object": {"metadata": {"name": "x"}}}
    kw = decode_kwargs(_delivery(cause=resource_pb2.CAUSE_DAEMON, restarted=True))
    assert kw["restarted"] is True and kw["reason"] == "daemon" and "type" not in kw
    assert decode_kwargs(_delivery(cause=resource_pb2.CAUSE_FIELD))["reason"] == "update"


def test_deliveries_that_are_not_json_raise_what_json_raises():
    with pytest.raises(json.JSONDecodeError):
        decode_kwargs(_delivery(body_json="{not json"))
    with pytest.raises(RecursionError):
        decode_kwargs(_delivery(new_json='{"a":' * 2000 + "1" + "}" * 2000))
    with pytest.raises(json.JSONDecodeError):
        decode_memo(_delivery(memo_json="nope"))


def test_objects_are_keyed_by_uid_else_namespace_and_name():
    d = _delivery()
    assert _wire.object_key(d) == "u1" and _wire.log_key(d) == "ns/x"
    d.object.uid = ""
    assert _wire.object_key(d) == "ns/x"
    d.object.namespace = ""
    assert _wire.log_key(d) == "x"
    d.object.name = ""
    assert _wire.log_key(d) == "h"  # An activity: named by its handler.
    assert _wire.is_activity(_delivery(cause=resource_pb2.CAUSE_PROBE))
    assert not _wire.is_activity(_delivery(cause=resource_pb2.CAUSE_TIMER))


def test_changes_split_the_status_and_diff_the_memo():
    changes = pb.ObjectChanges()
    failures = []
    patch = herald.Patch()
    patch.spec["a"] = 1
    patch.status["phase"] = "done"
    assert encode_changes(changes, patch, {"k": 1, "gone": 2}, {"k": 2}, failures) is True
    assert failures == []
    assert json.loads(changes.patch_json) == {"spec": {"a": 1}}
    assert json.loads(changes.status_patch_json) == {"phase": "done"}
    assert json.loads(changes.memo_patch_json) == {"k": 2, "gone": None}
    assert patch == {"spec": {"a": 1}, "status": {"phase": "done"}}  # Left as it was.
    changes = pb.ObjectChanges()
    assert encode_changes(changes, {}, {"k": 1}, {"k": 1}, failures) is False
    assert changes.ByteSize() == 0 and failures == []


def test_changes_that_cannot_be_encoded_are_named_and_the_rest_still_filled():
    class Incomparable:
        def __ne__(self, other):
            raise TypeError("no comparing")

    changes = pb.ObjectChanges()
    failures = []
    assert encode_changes(changes, {"spec": {"s": {1}}, "status": {"ok": 1}},
                          {"lock": 1}, {"lock": object()}, failures) is True
    assert changes.patch_json == "" and json.loads(changes.status_patch_json) == {"ok": 1}
    assert changes.memo_patch_json == ""
    assert [f.split(":")[0] for f in failures] == [
        "the patch cannot be encoded as JSON", "the memo patch cannot be encoded as JSON"]
    assert failures[0].startswith("the patch cannot be encoded as JSON: TypeError")
    failures = []
    assert encode_changes(pb.ObjectChanges(), {}, {"x": Incomparable()}, {"x": 1}, failures) \
        is False
    assert failures == ["the memo patch cannot be encoded as JSON: TypeError: no comparing"]


def test_results_are_json_and_index_results_pairs():
    failures = []
    assert json.loads(encode_result({"a": [1]}, False, failures)) == {"a": [1]}
    assert json.loads(encode_result({("k", 1): "v"}, True, failures)) == [[["k", 1], "v"]]
    assert failures == []
    loop = []
    loop.append(loop)
    assert encode_result(loop, False, failures) == ""
    assert encode_result({"k": object()}, True, failures) == ""
    assert failures[0].startswith("the result cannot be encoded as JSON: ValueError")
    assert failures[1].startswith("the result cannot be encoded as JSON: TypeError")


def test_events_are_encoded_in_order():
    changes = pb.ObjectChanges()
    encode_events(changes, [("NORMAL", "Info", "one"), ("WARNING", "Error", "two")])
    assert [(e.type, e.reason, e.message) for e in changes.events] == [
        (pb.EVENT_TYPE_NORMAL, "Info", "one"), (pb.EVENT_TYPE_WARNING, "Error", "two")]


def test_reasons_and_messages_for_outcomes():
    class Broken(Exception):
        def __str__(self):
            raise RuntimeError("no str")

    assert reason(KeyError("k")) == "KeyError: 'k'"
    assert reason(ValueError()) == "ValueError"
    assert reason(Broken()) == "Broken: (no message)"
    assert cut("x" * 10, limit=10) == "x" * 10
    assert cut("x" * 11, limit=10) == "x" * 7 + "..."
    assert len(cut("y" * 10000)) == _wire.MESSAGE_LIMIT
    o = _wire.failed_outcome("d-9", "z" * 10000).outcome
    assert o.delivery_id == "d-9" and o.status == pb.OUTCOME_STATUS_UNEXPECTED_ERROR
    assert len(o.message) == _wire.MESSAGE_LIMIT


def test_log_context_names_the_object_resource_and_handler_as_the_sidecar_does():
    from herald._wire import log_context
    d = pb.Delivery(handler_id="create_fn")
    d.object.namespace, d.object.name = "default", "kex-1"
    d.resource.plural, d.resource.version, d.resource.group = "kopfexamples", "v1", "kopf.dev"
    assert log_context(d) == {"namespace": "default", "name": "kex-1",
                              "resource": "kopfexamples.v1.kopf.dev", "id": "create_fn"}
    d = pb.Delivery(handler_id="on_ns")
    d.object.name = "team-a"
    d.resource.plural, d.resource.version = "namespaces", "v1"
    assert log_context(d) == {"name": "team-a", "resource": "namespaces.v1", "id": "on_ns"}
    # An activity is about no object.
    assert log_context(pb.Delivery(handler_id="startup_fn")) == {"id": "startup_fn"}
