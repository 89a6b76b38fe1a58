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


# --- Kopf's semantics added for porting ---------------------------------------


def _outcome(answers):
    (msg,) = answers
    return msg.outcome


def test_a_function_with_several_decorators_runs_once_per_object_state(caplog):
    reg, calls = herald.Registry(), []

    @herald.on.resume("kopfexamples", registry=reg)
    @herald.on.update("kopfexamples", registry=reg)
    def fn(reason, **_):
        calls.append(str(reason))
        return {"seen": str(reason)}

    ex = _execution_of(reg)
    q = fn.__qualname__

    def deliver(hid, cause, rv):
        d = _delivery(hid, cause)
        d.object.resource_version = rv
        return _outcome(_answers(ex, d))

    first = deliver(q, resource_pb2.CAUSE_UPDATE, "5")
    assert first.status == pb.OUTCOME_STATUS_SUCCESS and json.loads(first.result_json) == {
        "seen": "update"}
    # The resume handler of the same cycle (same resourceVersion): not called.
    with caplog.at_level(logging.INFO, "herald"):
        second = deliver(f"{q}/resume", resource_pb2.CAUSE_RESUME, "5")
    assert second.status == pb.OUTCOME_STATUS_SUCCESS and calls == ["update"]
    assert not [r for r in caplog.records if "succeeded" in r.getMessage()]  # Not called.
    # A later state: called, its result at status.<Kopf's id>, not the wire id.
    third = deliver(f"{q}/resume", resource_pb2.CAUSE_RESUME, "6")
    assert calls == ["update", "resume"] and not third.result_json
    assert json.loads(third.changes.status_patch_json) == {q: {"seen": "resume"}}
    ex.stacked.forget(_delivery())
    deliver(f"{q}/resume", resource_pb2.CAUSE_RESUME, "6")
    assert calls == ["update", "resume", "resume"]


def test_handlers_get_param_and_settings_and_the_default_retry_delay():
    reg, seen = herald.Registry(), {}

    @herald.on.create("kopfexamples", id="h", param={"p": 1}, registry=reg)
    def fn(param, settings, **_):
        seen.update(param=param, settings=settings)
        raise RuntimeError("boom")

    herald.on.update("kopfexamples", id="own", backoff=3, registry=reg)(fn)
    settings = herald.OperatorSettings()
    ex = Execution(reg, Memos(herald.Memo()), Daemons(asyncio.Event()), logging.INFO, settings)
    out = _outcome(_answers(ex, _delivery("h")))
    assert seen == {"param": {"p": 1}, "settings": settings}
    assert out.status == pb.OUTCOME_STATUS_UNEXPECTED_ERROR and not out.HasField("delay")
    settings.execution.default_backoff = 7  # As a startup handler would.
    assert _outcome(_answers(ex, _delivery("h"))).delay.seconds == 7
    # A handler's own backoff is the sidecar's to apply.
    assert not _outcome(_answers(ex, _delivery("own", resource_pb2.CAUSE_UPDATE))).HasField(
        "delay")
    settings.posting.enabled = False
    assert not _outcome(_answers(ex, _delivery("h"))).changes.events


@pytest.mark.parametrize("value, body, runs", [
    (None, '{"spec":{"run":false}}', True),
    (None, '{"spec":{}}', False),
    (True, '{"spec":{"run":true}}', True),
    (True, '{"spec":{"run":false}}', False),
    (herald.ABSENT, '{"spec":{}}', True),
    (lambda v, spec, **_: v is None and "other" in spec, '{"spec":{"other":1}}', True),
])
def test_field_filters_of_timers_are_checked_in_the_client(value, body, runs):
    reg, calls = herald.Registry(), []
    opts = {} if value is None else {"value": value}
    herald.on.timer("kopfexamples", id="t", interval=1, field="spec.run", registry=reg,
                    **opts)(lambda **_: calls.append(1))
    out = _outcome(_answers(_execution_of(reg),
                            _delivery("t/spec.run", resource_pb2.CAUSE_TIMER, body_json=body)))
    assert (out.status == pb.OUTCOME_STATUS_SUCCESS, bool(calls)) == (runs, runs)
    if not runs:
        assert out.status == pb.OUTCOME_STATUS_SKIPPED


def test_callable_value_filters_of_update_handlers_get_old_and_new():
    reg, seen = herald.Registry(), []
    herald.on.update("kopfexamples", id="u", field="spec.size",
                     value=lambda v, **_: seen.append(v) or v == 2,
                     new=lambda v, **_: v == 3, registry=reg)(lambda **_: None)
    d = _delivery("u/spec.size", resource_pb2.CAUSE_UPDATE, old_json="2", new_json="3")
    assert _outcome(_answers(_execution_of(reg), d)).status == pb.OUTCOME_STATUS_SUCCESS
    assert seen == [3, 2]  # New first, as Kopf.
    d = _delivery("u/spec.size", resource_pb2.CAUSE_UPDATE, old_json="2", new_json="4")
    assert _outcome(_answers(_execution_of(reg), d)).status == pb.OUTCOME_STATUS_SKIPPED


def test_subhandlers_take_kopfs_filters_param_and_errors_mode():
    reg, calls = herald.Registry(), []

    @herald.on.create("kopfexamples", id="p", registry=reg)
    def parent(**_):
        @herald.subhandler(id="skipped", when=lambda spec, **_: spec["a"] > 5)
        def skipped(**_):
            calls.append("skipped")

        @herald.subhandler(id="ignored", param=7, errors=herald.ErrorsMode.IGNORED)
        def ignored(param, **_):
            calls.append(param)
            raise RuntimeError("never mind")

        @herald.subhandler(id="later", backoff=4, field="spec.a", value=1)
        def later(**_):
            raise RuntimeError("again")

    out = _outcome(_answers(_execution_of(reg), _delivery("p")))
    assert calls == [7]
    assert [(c.id, c.status) for c in out.subhandlers] == [
        ("p/ignored", pb.OUTCOME_STATUS_SUCCESS), ("p/later", pb.OUTCOME_STATUS_UNEXPECTED_ERROR)]
    assert out.subhandlers[1].delay.seconds == 4


def test_one_function_under_two_fields_is_two_handlers_as_in_kopf():
    reg, calls = herald.Registry(), []

    @herald.on.field("kopfexamples", field="spec.a", registry=reg)
    @herald.on.field("kopfexamples", field="spec.b", registry=reg)
    def fn(**_):
        calls.append(1)

    ex = _execution_of(reg)
    for hid in (f"{fn.__qualname__}/spec.a", f"{fn.__qualname__}/spec.b"):
        d = _delivery(hid, resource_pb2.CAUSE_FIELD)
        d.object.resource_version = "9"
        assert _outcome(_answers(ex, d)).status == pb.OUTCOME_STATUS_SUCCESS
    assert calls == [1, 1]


def test_the_records_of_a_delivery_carry_its_object_and_handler(caplog):
    caplog.set_level(logging.INFO, logger="herald.handlers")
    reg = herald.Registry()
    herald.on.create("kopfexamples", id="h", registry=reg)(lambda logger, **_: logger.info("hi"))
    herald.on.create("kopfexamples", id="bad", registry=reg)(
        lambda **_: (_ for _ in ()).throw(herald.PermanentError("no")))
    ex = _execution_of(reg)
    d = _delivery("h")
    d.resource.plural, d.resource.version, d.resource.group = "kopfexamples", "v1", "kopf.dev"
    _answers(ex, d)
    d = _delivery("bad")
    d.resource.plural, d.resource.version = "kopfexamples", "v1"
    _answers(ex, d)
    about = [(r.getMessage(), {k: v for k, v in r.herald_context.items() if k != "prefix"})
             for r in caplog.records]
    obj = {"namespace": "ns", "name": "x"}
    assert about == [
        ("[ns/x] hi", {**obj, "resource": "kopfexamples.v1.kopf.dev", "id": "h"}),
        ("[ns/x] handler h succeeded", {**obj, "resource": "kopfexamples.v1.kopf.dev", "id": "h"}),
        ("[ns/x] handler bad failed permanently: no",
         {**obj, "resource": "kopfexamples.v1", "id": "bad"})]
