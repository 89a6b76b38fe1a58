"""Unit tests of herald._execution: one delivery, from its keyword arguments
to its outcome, without an operator or a sidecar."""

import asyncio
import json
import logging
import threading

import pytest

import herald
from herald import _daemons, _execution
from herald._daemons import Daemons
from herald._execution import Execution, Memos, call, set_error
from herald._logging import ObjectLogger
from herald.v1 import handler_pb2 as pb
from herald.v1 import resource_pb2


def _log(level=logging.INFO):
    return ObjectLogger(logging.getLogger("herald.handlers.h"), "ns/x", level)


@pytest.mark.parametrize("target", [pb.Outcome, pb.SubhandlerOutcome])
def test_errors_are_classified_as_kopf_does(target):
    def classify(e):
        t, log = target(), _log()
        try:
            raise e
        except Exception as raised:  # noqa: BLE001
            set_error(t, raised, log, "handler", "h")
        return t, log.events

    t, events = classify(herald.TemporaryError("later", delay=7.5))
    assert t.status == pb.OUTCOME_STATUS_TEMPORARY_ERROR and t.message == "later"
    assert (t.delay.seconds, t.delay.nanos) == (7, 500000000)
    assert events == [("WARNING", "Error", "handler h failed temporarily: later")]
    t, _ = classify(herald.TemporaryError("no delay", delay=None))
    assert t.status == pb.OUTCOME_STATUS_TEMPORARY_ERROR and not t.HasField("delay")
    t, events = classify(herald.PermanentError("never"))
    assert t.status == pb.OUTCOME_STATUS_PERMANENT_ERROR and t.message == "never"
    assert events == [("WARNING", "Error", "handler h failed permanently: never")]
    t, events = classify(KeyError("k"))
    assert t.status == pb.OUTCOME_STATUS_UNEXPECTED_ERROR and t.message == "KeyError: 'k'"
    assert events == [("WARNING", "Error", "handler h failed with an unexpected error")]
    t, _ = classify(ValueError("v" * 10000))
    assert len(t.message) == 4096 and t.message.endswith("...")


def test_coroutines_run_on_the_loop_and_functions_in_the_executor():
    seen = {}

    async def on_loop(x, **_):
        seen["async"] = (threading.current_thread().name, x)
        return "a"

    def in_pool(x, **_):
        seen["sync"] = (threading.current_thread().name, x, _execution._subhandlers.get())
        return "s"

    async def go():
        token = _execution._subhandlers.set(["declared"])
        try:
            return await call(on_loop, {"x": 1}), await call(in_pool, {"x": 2})
        finally:
            _execution._subhandlers.reset(token)
    assert asyncio.run(go()) == ("a", "s")
    assert seen["async"] == (threading.current_thread().name, 1)
    # The thread sees the task's context (herald.subhandler relies on it).
    assert seen["sync"][0].startswith("herald-sync") and seen["sync"][1:] == (2, ["declared"])


def _delivery(handler_id="h", cause=resource_pb2.CAUSE_CREATE, delivery_id="d-1", **kw):
    kw.setdefault("body_json", '{"metadata":{"name":"x","namespace":"ns"},"spec":{"a":1}}')
    d = pb.Delivery(delivery_id=delivery_id, handler_id=handler_id, cause=cause, **kw)
    d.object.namespace, d.object.name, d.object.uid = "ns", "x", "u1"
    return d


def test_memos_are_per_object_copies_of_the_operators_and_its_own_for_activities():
    class Custom:
        pass

    memos = Memos(herald.Memo(region="eu"))
    local = memos.for_delivery(_delivery())
    assert local == {"region": "eu"} and type(local) is herald.Memo
    assert local is not memos.memo and memos.for_delivery(_delivery()) is local
    assert memos.for_delivery(_delivery(cause=resource_pb2.CAUSE_STARTUP)) is memos.memo
    memos.forget(_delivery())
    assert memos.local == {} and memos.for_delivery(_delivery()) is not local
    custom = Memos(herald.Memo(region="eu"), factory=Custom).for_delivery(_delivery())
    assert type(custom) is Custom and custom.region == "eu"
    operator_memo = Custom()
    operator_memo.flag = True
    into_dict = Memos(operator_memo, factory=dict).for_delivery(_delivery())
    assert into_dict == {"flag": True}


def _execution_of(reg, stopping=None, posting_level=logging.INFO):
    return Execution(reg, Memos(herald.Memo()), Daemons(stopping or asyncio.Event()),
                     posting_level)


def _answers(execution, d):
    async def go():
        outbox = asyncio.Queue()
        await execution.handle(d, outbox)
        return [outbox.get_nowait() for _ in range(outbox.qsize())]
    return asyncio.run(go())


def test_the_after_callback_gets_the_outcome_and_its_failure_is_only_logged(caplog):
    reg = herald.Registry()
    seen = []

    def after(outcome, result, name, **_):
        seen.append((outcome, result, name))
        raise RuntimeError("after broke")

    herald.on.create("kopfexamples", id="h", after=after, registry=reg)(lambda **_: {"r": 1})
    herald.on.create("kopfexamples", id="t", after=after, registry=reg)(
        lambda **_: (_ for _ in ()).throw(herald.TemporaryError("later")))
    ex = _execution_of(reg)
    [m] = _answers(ex, _delivery("h"))
    assert m.outcome.status == pb.OUTCOME_STATUS_SUCCESS
    [m] = _answers(ex, _delivery("t"))
    assert m.outcome.status == pb.OUTCOME_STATUS_TEMPORARY_ERROR
    assert seen == [("OUTCOME_STATUS_SUCCESS", {"r": 1}, "x"),
                    ("OUTCOME_STATUS_TEMPORARY_ERROR", None, "x")]
    assert sum("the after-callback of h failed" in r.getMessage() for r in caplog.records) == 1


def test_successes_are_logged_but_not_posted(caplog):
    caplog.set_level(logging.INFO, logger="herald.handlers")
    reg = herald.Registry()
    herald.on.create("kopfexamples", id="h", registry=reg)(lambda logger, **_: logger.info("hi"))
    [m] = _answers(_execution_of(reg), _delivery("h"))
    assert [e.message for e in m.outcome.changes.events] == ["hi"]
    assert [r.getMessage() for r in caplog.records] == ["[ns/x] hi", "[ns/x] handler h succeeded"]


def test_an_objects_memo_goes_when_the_object_does():
    reg = herald.Registry()
    herald.on.delete("kopfexamples", id="del", registry=reg)(lambda **_: None)
    herald.on.delete("kopfexamples", id="fails", registry=reg)(
        lambda **_: (_ for _ in ()).throw(herald.TemporaryError("later")))
    herald.on.event("kopfexamples", id="ev", registry=reg)(lambda **_: None)
    ex = _execution_of(reg)
    ex.memos.for_delivery(_delivery())
    _answers(ex, _delivery("fails", cause=resource_pb2.CAUSE_DELETE))
    assert list(ex.memos.local) == ["u1"]  # Not deleted yet.
    _answers(ex, _delivery("del", cause=resource_pb2.CAUSE_DELETE))
    assert ex.memos.local == {}
    ex.memos.for_delivery(_delivery())
    _answers(ex, _delivery("ev", cause=resource_pb2.CAUSE_EVENT, event_type="MODIFIED"))
    assert list(ex.memos.local) == ["u1"]
    _answers(ex, _delivery("ev", cause=resource_pb2.CAUSE_EVENT, event_type="DELETED"))
    assert ex.memos.local == {}


def _daemon_registry(fn):
    reg = herald.Registry()
    herald.daemon("kopfexamples", id="dmn", registry=reg)(fn)
    return reg


async def _start_daemon(ex, outbox, delivery_id="d-1"):
    d = _delivery("dmn", cause=resource_pb2.CAUSE_DAEMON, delivery_id=delivery_id,
                  memo_json='{"n":0}')
    task = asyncio.ensure_future(ex.handle(d, outbox))
    flag = ex.daemons.start(d.delivery_id, task)
    await asyncio.sleep(0)
    return task, flag


def test_a_daemon_cancelled_at_the_sidecars_request_reports_it_ended():
    started = []

    async def dmn(stopped, restarted, **_):
        started.append((stopped, restarted))
        await asyncio.sleep(60)

    async def go():
        ex, outbox = _execution_of(_daemon_registry(dmn)), asyncio.Queue()
        task, flag = await _start_daemon(ex, outbox)
        assert started == [(flag, False)]
        ex.daemons.stop(pb.Stop(delivery_id="d-1", reason=pb.STOP_REASON_OBJECT_DELETED,
                                force=True))
        await asyncio.wait_for(task, 5)
        return outbox.get_nowait().outcome, outbox.qsize()
    o, left = asyncio.run(go())
    assert o.status == pb.OUTCOME_STATUS_SUCCESS and o.message == "cancelled after a stop request"
    assert left == 0


def test_a_daemon_of_a_stopping_process_gets_no_outcome():
    async def polite(stopped, **_):
        await stopped.wait(60)

    async def stubborn(**_):
        await asyncio.sleep(60)

    async def go(fn):
        stopping = asyncio.Event()
        ex, outbox = _execution_of(_daemon_registry(fn), stopping), asyncio.Queue()
        task, flag = await _start_daemon(ex, outbox)
        stopping.set()
        ex.daemons.stop_all()
        done, _ = await asyncio.wait({task}, timeout=0.5)
        if not done:  # Past the stop wait: cancelled.
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        return outbox.qsize(), flag.reason
    # It restarts on another process: the sidecar redelivers it.
    assert asyncio.run(go(polite)) == (0, "shutdown")
    assert asyncio.run(go(stubborn)) == (0, "shutdown")


def test_a_daemon_sends_its_changes_while_it_runs_and_the_rest_with_its_outcome(monkeypatch):
    monkeypatch.setattr(_daemons, "INTERIM_INTERVAL", 0.02)

    async def dmn(stopped, patch, shared_memo, logger, **_):
        patch.status["phase"] = "running"
        shared_memo["n"] = 1
        logger.info("up")
        await stopped.wait(60)
        shared_memo["n"] = 2
        return None

    async def go():
        ex, outbox = _execution_of(_daemon_registry(dmn)), asyncio.Queue()
        task, _ = await _start_daemon(ex, outbox)
        interim = (await asyncio.wait_for(outbox.get(), 5)).interim_changes
        ex.daemons.stop(pb.Stop(delivery_id="d-1", reason=pb.STOP_REASON_FILTER_MISMATCH))
        await asyncio.wait_for(task, 5)
        return interim, [outbox.get_nowait() for _ in range(outbox.qsize())]
    interim, rest = asyncio.run(go())
    assert interim.delivery_id == "d-1"
    assert json.loads(interim.changes.status_patch_json) == {"phase": "running"}
    assert json.loads(interim.changes.memo_patch_json) == {"n": 1}
    assert [e.message for e in interim.changes.events] == ["up"]
    [final] = rest
    o = final.outcome
    assert o.status == pb.OUTCOME_STATUS_SUCCESS
    # Only what changed since the interim changes: the memo since n=1.
    assert o.changes.status_patch_json == "" and json.loads(o.changes.memo_patch_json) == {"n": 2}
    assert len(o.changes.events) == 0
