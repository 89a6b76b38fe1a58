"""Unit tests of herald.posting: Kopf's event/info/warn/exception from
handlers, sent with the outcome as Events about the handled object."""

import asyncio
import logging

import pytest

from herald import _logging
import herald
from herald import posting
from herald._daemons import Daemons
from herald._execution import Execution, Memos
from herald.v1 import handler_pb2 as pb
from herald.v1 import resource_pb2

BODY = '{"metadata":{"name":"x","namespace":"ns","uid":"u1"}}'


def _events(fn, settings=None):
    reg = herald.Registry()
    herald.on.create("kopfexamples", id="h", registry=reg)(fn)
    ex = Execution(reg, Memos(herald.Memo()), Daemons(asyncio.Event()), logging.INFO,
                   settings or herald.OperatorSettings())
    d = pb.Delivery(delivery_id="d", handler_id="h", cause=resource_pb2.CAUSE_CREATE,
                    body_json=BODY)

    async def go():
        outbox = asyncio.Queue()
        await ex.handle(d, outbox)
        return outbox.get_nowait().outcome
    out = asyncio.run(go())
    return [(pb.EventType.Name(e.type), e.reason, e.message) for e in out.changes.events]


def test_events_about_the_handled_object_go_with_the_outcome():
    def fn(body, **_):
        herald.info(body, reason="Created", message="all set")
        herald.event([body], type="Warning", reason="Odd", message="hm")
        try:
            raise KeyError("k")
        except KeyError:
            herald.exception(body, message="failed:")

    assert _events(fn) == [("EVENT_TYPE_NORMAL", "Created", "all set"),
                           ("EVENT_TYPE_WARNING", "Odd", "hm"),
                           ("EVENT_TYPE_WARNING", "KeyError", "failed: 'k'")]


def test_posting_settings_decide_as_in_kopf():
    def fn(body, **_):
        herald.info(body, reason="Quiet", message="info")
        herald.warn(body, reason="Loud", message="warning")

    settings = herald.OperatorSettings()
    settings.posting.level = logging.WARNING
    assert _events(fn, settings) == [("EVENT_TYPE_WARNING", "Loud", "warning")]
    settings.posting.enabled = False
    assert _events(fn, settings) == []


def test_other_objects_and_calls_outside_handlers_are_dropped_with_a_warning(caplog, monkeypatch):
    monkeypatch.setattr(_logging, "_warned", set())
    other = {"metadata": {"name": "y", "uid": "u2"}}

    def fn(**_):
        herald.info(other, reason="Elsewhere")
        herald.info(other, reason="Again")

    with caplog.at_level(logging.WARNING, "herald"):
        assert _events(fn) == []
        herald.info(other, reason="Outside")
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "another object" in m]) == 1
    assert len([m for m in messages if "outside a handler" in m]) == 1
