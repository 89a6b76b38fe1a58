"""Unit tests of herald.typedefs: Kopf's type names and what handlers get."""

import json

import herald
from herald._wire import decode_kwargs
from herald.v1 import handler_pb2 as pb
from herald.v1 import resource_pb2


def test_body_parts_are_dicts_with_kopfs_attributes():
    body = herald.Body({"metadata": {"name": "x", "namespace": "ns", "uid": "u",
                                     "labels": {"a": "1"}, "creationTimestamp": "t"},
                        "spec": {"size": 1}})
    assert isinstance(body.meta, herald.Meta) and body.meta is body["metadata"]
    assert body.meta.name == "x" and body.meta.namespace == "ns" and body.meta.uid == "u"
    assert body.meta.labels == {"a": "1"} and body.meta.annotations == {}
    assert body.meta.creation_timestamp == "t" and body.meta.deletion_timestamp is None
    assert body.spec == {"size": 1} and isinstance(body.spec, herald.Spec)
    assert body.status == {} and isinstance(body.status, herald.Status)
    assert json.loads(json.dumps(body)) == body


def test_diffs_and_reasons_equal_plain_values():
    diff = herald.Diff([("change", ["spec", "a"], 0, 1)])
    assert diff == (("change", ("spec", "a"), 0, 1),)
    item = diff[0]
    assert isinstance(item, herald.DiffItem) and item.operation is herald.DiffOperation.CHANGE
    assert (item.field, item.old, item.new) == (("spec", "a"), 0, 1)
    assert herald.Reason.CREATE == "create" and str(herald.Reason.RESUME) == "resume"


def test_deliveries_give_handlers_kopfs_types():
    d = pb.Delivery(cause=resource_pb2.CAUSE_UPDATE,
                    body_json='{"metadata":{"name":"x"},"spec":{"a":1}}',
                    diff_json='[["change",["spec","a"],0,1]]')
    kw = decode_kwargs(d)
    assert isinstance(kw["body"], herald.Body) and isinstance(kw["meta"], herald.Meta)
    assert isinstance(kw["spec"], herald.Spec) and isinstance(kw["status"], herald.Status)
    assert kw["meta"].name == "x" and kw["body"].spec is kw["spec"]
    assert isinstance(kw["diff"], herald.Diff) and kw["diff"][0].operation == "change"
    assert kw["reason"] is herald.Reason.UPDATE
    timer = decode_kwargs(pb.Delivery(cause=resource_pb2.CAUSE_TIMER))
    assert timer["reason"] == "timer" and timer["body"] == {}


def test_typing_names_subscript_as_kopfs_do():
    def handler(spec: herald.Spec, diff: herald.Diff, logger: herald.Logger,
                idx: herald.Index[str, dict], store: herald.Store[dict],
                event: herald.RawEvent, labels: herald.Labels, **_) -> None: ...
    assert handler.__annotations__["idx"] is not None
