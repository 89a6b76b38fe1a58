"""Unit tests of the Python client's own logic (no sidecar)."""

import asyncio
import json

import pytest

import herald
from herald.runtime import Operator, handler_spec
from herald.structs import merge_patch_between
from herald.v1 import handler_pb2 as pb
from herald.v1 import resource_pb2


def test_patch_and_memo_containers():
    p = herald.Patch()
    p.spec["x"] = 1
    p.status["phase"] = "done"
    p.metadata.labels["a"] = "b"
    assert p == {"spec": {"x": 1}, "status": {"phase": "done"}, "metadata": {"labels": {"a": "b"}}}
    m = herald.Memo(a=1)
    m.b = 2
    assert m["b"] == 2 and m.a == 1
    with pytest.raises(AttributeError):
        m.missing
    assert merge_patch_between({"a": 1, "b": {"c": 1, "d": 2}}, {"a": 1, "b": {"c": 2}, "e": 3}) == \
        {"b": {"c": 2, "d": None}, "e": 3}


def _delivery(handler_id, cause="CAUSE_CREATE", **kw):
    kw.setdefault("body_json", json.dumps({"metadata": {"name": "x", "namespace": "ns", "uid": "u1"},
                                           "spec": {"a": 1}}))
    d = pb.Delivery(delivery_id="d-1", handler_id=handler_id,
                    cause=resource_pb2.Cause.Value(cause), **kw)
    d.object.namespace, d.object.name, d.object.uid = "ns", "x", "u1"
    return d


def _run(op, d):
    async def go():
        outbox = asyncio.Queue()
        await op._handle(d, outbox)
        return (await outbox.get()).outcome
    return asyncio.run(go())


def test_outcomes_for_results_errors_patches_and_memos():
    reg = herald.Registry()

    @herald.on.create("kopfexamples", id="ok", registry=reg)
    def ok(spec, patch, memo, shared_memo, logger, **_):
        patch.status["seen"] = spec["a"]
        patch.metadata.labels["l"] = "v"
        memo.count = memo.get("count", 0) + 1
        shared_memo["n"] = 1
        logger.warning("careful")
        return {"done": True}

    @herald.on.create("kopfexamples", id="temp", registry=reg)
    async def temp(**_):
        raise herald.TemporaryError("later", delay=7)

    @herald.on.create("kopfexamples", id="perm", registry=reg)
    def perm(**_):
        raise herald.PermanentError("never")

    @herald.on.create("kopfexamples", id="boom", registry=reg)
    def boom(**_):
        raise KeyError("k")

    @herald.on.create("kopfexamples", id="skipped", when=lambda spec, **_: False, registry=reg)
    def skipped(**_):
        raise AssertionError("not called")

    op = Operator(registry=reg, memo=herald.Memo(shared="op"))
    o = _run(op, _delivery("ok"))
    assert o.status == pb.OUTCOME_STATUS_SUCCESS
    assert json.loads(o.result_json) == {"done": True}
    assert json.loads(o.changes.patch_json) == {"metadata": {"labels": {"l": "v"}}}
    assert json.loads(o.changes.status_patch_json) == {"seen": 1}
    assert json.loads(o.changes.memo_patch_json) == {"n": 1}
    assert [(e.type, e.message) for e in o.changes.events][0] == (pb.EVENT_TYPE_WARNING, "careful")
    # The local memo is per object and starts as a copy of the operator memo.
    assert op.memos["u1"] == {"shared": "op", "count": 1}
    assert op.memo == {"shared": "op"}
    o = _run(op, _delivery("temp"))
    assert o.status == pb.OUTCOME_STATUS_TEMPORARY_ERROR and o.delay.seconds == 7 and o.message == "later"
    assert _run(op, _delivery("perm")).status == pb.OUTCOME_STATUS_PERMANENT_ERROR
    o = _run(op, _delivery("boom"))
    assert o.status == pb.OUTCOME_STATUS_UNEXPECTED_ERROR and "KeyError" in o.message
    assert _run(op, _delivery("skipped")).status == pb.OUTCOME_STATUS_SKIPPED
    assert _run(op, _delivery("unknown")).status == pb.OUTCOME_STATUS_PERMANENT_ERROR


def test_update_kwargs_and_custom_memo_class():
    reg = herald.Registry()
    seen = {}

    class MyMemo:
        pass

    @herald.on.update("kopfexamples", id="upd", registry=reg)
    def upd(old, new, diff, reason, retry, memo, resource, **_):
        seen.update(old=old, new=new, diff=diff, reason=reason, retry=retry,
                    memo=type(memo).__name__, flag=memo.flag, plural=resource.plural)

    op = Operator(registry=reg, memo=herald.Memo(flag=True), memo_factory=MyMemo)
    d = _delivery("upd", cause="CAUSE_UPDATE", old_json='{"spec":{"a":0}}', new_json='{"spec":{"a":1}}',
                  diff_json='[["change",["spec","a"],0,1]]', retry=2)
    d.resource.plural = "kopfexamples"
    _run(op, d)
    assert seen == {"old": {"spec": {"a": 0}}, "new": {"spec": {"a": 1}},
                    "diff": (("change", ("spec", "a"), 0, 1),), "reason": "update", "retry": 2,
                    "memo": "MyMemo", "flag": True, "plural": "kopfexamples"}


def test_adopt_sets_owner_namespace_and_name():
    owner = {"apiVersion": "kopf.dev/v1", "kind": "KopfExample",
             "metadata": {"name": "ex", "namespace": "ns", "uid": "u1"}}
    child = herald.adopt({"kind": "Pod", "spec": {"template": {}}}, owner, nested=("spec.template",))
    assert child["metadata"]["ownerReferences"] == [
        {"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "name": "ex", "uid": "u1",
         "controller": True, "blockOwnerDeletion": True}]
    assert child["metadata"]["namespace"] == "ns"
    assert child["metadata"]["generateName"] == "ex-"
    assert child["spec"]["template"]["metadata"]["namespace"] == "ns"
    herald.adopt(child, owner)
    assert len(child["metadata"]["ownerReferences"]) == 1


def test_run_loads_files_and_plain_module_functions(tmp_path, monkeypatch):
    from herald import _cli
    reg = herald.Registry()
    monkeypatch.setattr(herald.registry, "_default", reg)
    (tmp_path / "plainmod.py").write_text(
        "def handle(**_):\n    return 'plain'\n\ndef other(**_):\n    pass\n")
    (tmp_path / "decorated.py").write_text(
        "import herald\n\n@herald.on.update('kopfexamples')\ndef changed(**_):\n    pass\n")
    monkeypatch.chdir(tmp_path)
    _cli._load("plainmod:handle", "create", "kopfexamples")
    _cli._load(str(tmp_path / "decorated.py"), None, None)
    ids = {h.id: (h.cause, h.resource) for h in reg.handlers}
    assert ids == {"handle": ("CAUSE_CREATE", "kopfexamples"),
                   "changed": ("CAUSE_UPDATE", "kopfexamples")}
    with pytest.raises(SystemExit, match="plain function"):
        _cli._load("plainmod:other", None, None)


def test_daemon_stopped_flag_in_threads_and_coroutines():
    import threading
    import time
    flag = herald.DaemonStopped()
    assert not flag and flag.wait(0.01) is False
    threading.Timer(0.05, flag.set, args=("STOP_REASON_OBJECT_DELETED",)).start()
    t0 = time.monotonic()
    assert flag.wait(5) is True and time.monotonic() - t0 < 2
    assert flag and flag.reason == "STOP_REASON_OBJECT_DELETED"

    async def go():
        f = herald.DaemonStopped()
        asyncio.get_running_loop().call_later(0.05, f.set, "STOP_REASON_SHUTDOWN")
        assert await f.wait(0.01) is False
        assert await f.wait(5) is True
        return f.reason
    assert asyncio.run(go()) == "STOP_REASON_SHUTDOWN"


def test_subhandlers_report_per_child_and_skip_done_ones():
    reg = herald.Registry()
    calls = []

    @herald.on.create("kopfexamples", id="parent", registry=reg)
    def parent(**_):
        for item in ("a", "b", "c"):
            @herald.subhandler(id=item)
            def child(item=item, **_):
                calls.append(item)
                if item == "b":
                    raise herald.TemporaryError("later", delay=3)
                if item == "c":
                    raise herald.PermanentError("no")

    op = Operator(registry=reg)
    o = _run(op, _delivery("parent", done_subhandler_ids=["parent/a"]))
    assert calls == ["b", "c"]  # a was done before.
    assert [(c.id, c.status) for c in o.subhandlers] == [
        ("parent/b", pb.OUTCOME_STATUS_TEMPORARY_ERROR),
        ("parent/c", pb.OUTCOME_STATUS_PERMANENT_ERROR)]
    assert o.subhandlers[0].delay.seconds == 3 and o.status == pb.OUTCOME_STATUS_SUCCESS
    with pytest.raises(RuntimeError):
        herald.subhandler(id="outside")(lambda **_: None)


def test_activities_see_the_operator_memo_itself():
    reg = herald.Registry()

    @herald.on.startup(id="boot", registry=reg)
    def boot(memo, shared_memo, **_):
        memo.ready = True
        shared_memo["region"] = "eu"

    op = Operator(registry=reg, memo=herald.Memo())
    d = pb.Delivery(delivery_id="a-1", handler_id="boot", cause=resource_pb2.CAUSE_STARTUP,
                    memo_json="{}")
    o = _run(op, d)
    assert o.status == pb.OUTCOME_STATUS_SUCCESS
    assert op.memo == {"ready": True} and op.memos == {}
    assert json.loads(o.changes.memo_patch_json) == {"region": "eu"}


def _deep(depth):
    """A JSON object nested `depth` levels deep."""
    return '{"a":' * depth + "1" + "}" * depth


def _answer(op, d):
    """Handles one delivery; it must be answered with exactly one outcome."""
    async def go():
        outbox = asyncio.Queue()
        await op._handle(d, outbox)
        assert outbox.qsize() == 1, f"{outbox.qsize()} messages for one delivery"
        return (await outbox.get()).outcome
    return asyncio.run(go())


def test_deliveries_the_client_cannot_decode_are_answered_as_unexpected_errors():
    reg = herald.Registry()
    calls = []

    @herald.on.create("kopfexamples", id="h", registry=reg)
    def h(**_):
        calls.append(1)

    op = Operator(registry=reg)
    deep = '{"metadata":{"name":"x"},"spec":' + _deep(1000) + "}"
    for d in (_delivery("h", body_json=deep), _delivery("h", memo_json=_deep(1000)),
              _delivery("h", cause="CAUSE_UPDATE", old_json=_deep(1000), new_json="{}"),
              _delivery("h", body_json="{not json")):
        o = _answer(op, d)
        assert o.delivery_id == "d-1"
        assert o.status == pb.OUTCOME_STATUS_UNEXPECTED_ERROR
        assert o.message.startswith("the delivery cannot be decoded: "), o.message
    assert "RecursionError" in _answer(op, _delivery("h", body_json=deep)).message
    assert "JSONDecodeError" in _answer(op, _delivery("h", body_json="{not json")).message
    assert calls == []  # The handler is never called with half its arguments.
    assert _answer(op, _delivery("h")).status == pb.OUTCOME_STATUS_SUCCESS


def test_results_patches_and_memos_that_cannot_be_encoded_are_unexpected_errors():
    reg = herald.Registry()
    loop = {}
    loop["self"] = loop

    @herald.on.create("kopfexamples", id="opaque", registry=reg)
    def opaque(**_):
        return {"when": object()}

    @herald.on.create("kopfexamples", id="circular", registry=reg)
    async def circular(**_):
        return loop

    @herald.on.create("kopfexamples", id="deep", registry=reg)
    def deep(**_):
        return _nested(5000)

    @herald.on.create("kopfexamples", id="index", registry=reg)
    def index_fn(**_):
        return {"k": object()}
    reg.get("index").cause = "CAUSE_INDEX"

    @herald.on.create("kopfexamples", id="badpatch", registry=reg)
    def badpatch(patch, shared_memo, logger, **_):
        patch.status["x"] = {1, 2}
        patch.metadata.labels["ok"] = "yes"
        shared_memo["fine"] = 1
        logger.info("still posted")
        return {"ignored": True}

    @herald.on.create("kopfexamples", id="retried", registry=reg)
    def retried(patch, **_):
        patch.spec["when"] = object()
        raise herald.TemporaryError("later", delay=7)

    @herald.on.create("kopfexamples", id="badmemo", registry=reg)
    def badmemo(shared_memo, **_):
        shared_memo["lock"] = object()

    op = Operator(registry=reg)
    o = _answer(op, _delivery("badpatch"))
    assert o.status == pb.OUTCOME_STATUS_UNEXPECTED_ERROR
    assert o.message.startswith("the status patch cannot be encoded as JSON: TypeError"), o.message
    assert o.result_json == "" and o.changes.status_patch_json == ""
    # What could be encoded still goes out, as with any failed handler.
    assert json.loads(o.changes.patch_json) == {"metadata": {"labels": {"ok": "yes"}}}
    assert json.loads(o.changes.memo_patch_json) == {"fine": 1}
    assert [e.message for e in o.changes.events] == [
        "still posted", "handler badpatch failed: " + o.message]
    o = _answer(op, _delivery("badmemo"))
    assert o.status == pb.OUTCOME_STATUS_UNEXPECTED_ERROR
    assert o.message.startswith("the memo patch cannot be encoded as JSON: TypeError"), o.message
    # A failed handler keeps its verdict; the reason is added.
    o = _answer(op, _delivery("retried"))
    assert o.status == pb.OUTCOME_STATUS_TEMPORARY_ERROR and o.delay.seconds == 7
    assert o.message.startswith("later; the patch cannot be encoded as JSON: TypeError"), o.message
    assert o.changes.patch_json == ""
    for hid, reason in (("opaque", "TypeError"), ("circular", "ValueError"),
                        ("deep", "RecursionError"), ("index", "TypeError")):
        o = _answer(op, _delivery(hid))
        assert o.status == pb.OUTCOME_STATUS_UNEXPECTED_ERROR, hid
        assert o.message.startswith("the result cannot be encoded as JSON: " + reason), o.message
        assert o.result_json == ""


def _nested(depth):
    out = {}
    for _ in range(depth):
        out = {"a": out}
    return out


def test_failures_in_when_filters_and_subhandlers_are_outcomes():
    reg = herald.Registry()

    @herald.on.create("kopfexamples", id="badwhen", when=lambda **_: 1 / 0, registry=reg)
    def badwhen(**_):
        raise AssertionError("not called")

    @herald.on.create("kopfexamples", id="parent", registry=reg)
    def parent(**_):
        @herald.subhandler(id="child")
        def child(**_):
            return {"ignored": object()}

        @herald.subhandler(id="deep")
        def deep(**_):
            raise RecursionError("too deep")

    op = Operator(registry=reg)
    o = _answer(op, _delivery("badwhen"))
    assert o.status == pb.OUTCOME_STATUS_UNEXPECTED_ERROR and "ZeroDivisionError" in o.message
    o = _answer(op, _delivery("parent"))
    assert [(c.id, c.status) for c in o.subhandlers] == [
        ("parent/child", pb.OUTCOME_STATUS_SUCCESS),
        ("parent/deep", pb.OUTCOME_STATUS_UNEXPECTED_ERROR)]
    assert "RecursionError: too deep" in o.subhandlers[1].message


def test_any_unforeseen_failure_still_answers_the_delivery(monkeypatch):
    reg = herald.Registry()
    herald.on.create("kopfexamples", id="h", registry=reg)(lambda **_: None)
    op = Operator(registry=reg)

    def broken(*_, **__):
        raise RuntimeError("broken logger")
    monkeypatch.setattr(herald._execution, "ObjectLogger", broken)
    o = _answer(op, _delivery("h"))
    assert o.status == pb.OUTCOME_STATUS_UNEXPECTED_ERROR
    assert o.message == "the client failed to handle the delivery: RuntimeError: broken logger"


def test_callable_label_and_annotation_filters_are_evaluated_by_the_client():
    reg = herald.Registry()
    seen = []

    def tier(value, name, spec, labels, **_):
        seen.append(("tier", value, name, spec, labels))
        return value in ("gold", "silver")

    async def owner(value, **_):
        seen.append(("owner", value))
        return value is None  # Matches when the annotation is absent.

    def when(**_):
        seen.append(("when",))
        return True

    @herald.on.create("kopfexamples", id="h", labels={"tier": tier, "app": "web"},
                      annotations={"owner": owner, "kept": herald.PRESENT}, when=when,
                      registry=reg)
    def h(**_):
        seen.append(("called",))
        return "ok"

    @herald.on.update("kopfexamples", id="plain", labels={"app": "web"}, registry=reg)
    def plain(**_):
        pass

    s = handler_spec(reg.get("h"))
    # The callables stay in the client; the rest of the filters go to the sidecar.
    assert set(s.labels) == {"app"} and s.labels["app"].value == "web"
    assert set(s.annotations) == {"kept"}
    assert s.has_when
    assert not handler_spec(reg.get("plain")).has_when

    def delivery(labels, annotations):
        body = {"metadata": {"name": "x", "namespace": "ns", "labels": labels,
                             "annotations": annotations}, "spec": {"a": 1}}
        return _delivery("h", body_json=json.dumps(body))

    op = Operator(registry=reg)
    o = _answer(op, delivery({"tier": "gold", "app": "web"}, {"kept": ""}))
    assert o.status == pb.OUTCOME_STATUS_SUCCESS and json.loads(o.result_json) == "ok"
    # Kopf's order: labels, annotations, then `when`; each gets the handler's kwargs.
    assert seen == [("tier", "gold", "x", {"a": 1}, {"tier": "gold", "app": "web"}),
                    ("owner", None), ("when",), ("called",)]
    seen.clear()
    o = _answer(op, delivery({"app": "web"}, {"kept": ""}))  # No tier label: the filter gets None.
    assert o.status == pb.OUTCOME_STATUS_SKIPPED
    assert seen == [("tier", None, "x", {"a": 1}, {"app": "web"})]
    seen.clear()
    o = _answer(op, delivery({"tier": "silver"}, {"owner": "someone"}))
    assert o.status == pb.OUTCOME_STATUS_SKIPPED
    assert [s[0] for s in seen] == ["tier", "owner"]


def test_a_failing_label_filter_is_an_unexpected_error():
    reg = herald.Registry()

    @herald.on.create("kopfexamples", id="h", labels={"x": lambda value, **_: value.upper()},
                      registry=reg)
    def h(**_):
        raise AssertionError("not called")

    o = _answer(Operator(registry=reg), _delivery("h"))  # No label x: value is None.
    assert o.status == pb.OUTCOME_STATUS_UNEXPECTED_ERROR
    assert "AttributeError" in o.message


def test_credits_are_sized_by_what_the_handlers_are(monkeypatch):
    from herald import _execution, runtime
    monkeypatch.setattr(_execution, "_executor", None)
    monkeypatch.setenv("HERALD_EXECUTOR_WORKERS", "6")
    monkeypatch.delenv("HERALD_CREDITS", raising=False)

    def registry(*fns):
        reg = herald.Registry()
        for i, fn in enumerate(fns):
            herald.on.create("kopfexamples", id=f"h{i}", registry=reg)(fn)
        return reg

    async def waits(**_):
        pass

    def blocks(**_):
        pass

    # Async handlers wait on the event loop: a large default, not the pool's size.
    assert Operator(registry=registry(waits)).credits == runtime.ASYNC_CREDITS == 1000
    # Sync ones run in the pool: more deliveries than threads would only queue.
    assert Operator(registry=registry(blocks, blocks)).credits == 6
    assert Operator(registry=registry(waits, blocks)).credits == 1006
    # Daemons take no credit; declarative indices are never delivered.
    reg = registry(blocks)
    herald.daemon("kopfexamples", id="d", registry=reg)(waits)
    herald.declare_index("kopfexamples", id="by_app", label="app", registry=reg)
    assert Operator(registry=reg).credits == 6
    # Handlers registered after the operator was made count too.
    reg = herald.Registry()
    op = Operator(registry=reg)
    herald.on.update("kopfexamples", id="late", registry=reg)(waits)
    assert op.credits == 1000
    # The executor in use decides, once there is one.
    monkeypatch.setattr(_execution, "_executor", None)
    monkeypatch.setenv("HERALD_EXECUTOR_WORKERS", "3")
    runtime.get_executor()
    monkeypatch.setenv("HERALD_EXECUTOR_WORKERS", "50")
    assert Operator(registry=registry(blocks)).credits == 3
    monkeypatch.setattr(_execution, "_executor", None)
    # Explicit credits win, then $HERALD_CREDITS.
    monkeypatch.setenv("HERALD_CREDITS", "7")
    assert Operator(registry=registry(waits)).credits == 7
    assert Operator(registry=registry(waits), credits=2).credits == 2


class _FakeCall:
    """A handler stream that answers `register` with `registered`, then ends."""

    def __init__(self, registered, ended=None):
        self.registered = registered
        self.ended = ended

    def __aiter__(self):
        return self._messages()

    async def _messages(self):
        yield pb.ConnectResponse(registered=self.registered)
        if self.ended is not None:
            self.ended.set()

    def cancel(self):
        pass


def _registered(rejections=(), pending=(), accepted=("good",)):
    return pb.Registered(
        stream_id="stream-1", accepted_handler_ids=list(accepted),
        rejections=[pb.HandlerRejection(handler_id=i, reason=r) for i, r in rejections],
        pending=[pb.PendingHandler(handler_id=i, reason=r) for i, r in pending])


def _two_handlers():
    reg = herald.Registry()
    herald.on.create("kopfexamples", id="good", registry=reg)(lambda **_: None)
    herald.on.field("kopfexamples", id="bad", field="", registry=reg)(lambda **_: None)
    return reg


def test_rejected_handlers_stop_the_operator_with_their_reasons(monkeypatch, caplog):
    from herald import runtime

    async def go():
        ended = asyncio.Event()
        monkeypatch.setattr(runtime.pb_grpc, "HandlerServiceStub", lambda channel: type(
            "Stub", (), {"Connect": lambda self, requests: _FakeCall(_registered(
                rejections=[("bad", "a field handler needs a field")]), ended)})())
        ready = asyncio.Event()
        # Without the fix the stream would end and the operator reconnect: the
        # stop flag ends that loop, so the test fails rather than hangs.
        await herald.operator(registry=_two_handlers(), target="unix:/nonexistent/herald.sock",
                              stop_flag=ended, ready_flag=ready)
        return ready

    with pytest.raises(herald.RegistrationRejected) as e:
        asyncio.run(go())
    assert e.value.rejections == [("bad", "a field handler needs a field")]
    assert "'bad': a field handler needs a field" in str(e.value)
    assert "allow_rejected" in str(e.value)
    assert ("herald", 40, "handler 'bad' was rejected: a field handler needs a field") in \
        caplog.record_tuples


def test_allow_rejected_serves_the_rest_and_pending_handlers_are_warned_about(caplog):
    op = Operator(registry=_two_handlers(), allow_rejected=True)
    ready = asyncio.Event()
    call = _FakeCall(_registered(rejections=[("bad", "a field handler needs a field")],
                                 pending=[("good", "resource 'kopfexamples' not found yet")]))

    async def go():
        await op._read(call, asyncio.Queue(), ready)
    asyncio.run(go())
    assert ready.is_set()
    logged = [(lvl, msg) for _, lvl, msg in caplog.record_tuples]
    assert (40, "handler 'bad' was rejected: a field handler needs a field") in logged
    assert (30, "handler 'good' is waiting for its resource: "
                "resource 'kopfexamples' not found yet") in logged
    # Pending handlers alone are no error, whatever allow_rejected says.
    op = Operator(registry=_two_handlers())
    ready = asyncio.Event()
    asyncio.run(op._read(_FakeCall(_registered(pending=[("good", "503")])), asyncio.Queue(), ready))
    assert ready.is_set()


def test_run_has_an_allow_rejected_flag(monkeypatch):
    from herald import _cli
    seen = {}

    class FakeOperator:
        def __init__(self, **kw):
            seen.update(kw)

        def stop(self):
            pass

        async def run(self):
            raise herald.RegistrationRejected([("bad", "a field handler needs a field")])

    monkeypatch.setattr(_cli, "Operator", FakeOperator)
    with pytest.raises(SystemExit) as e:
        _cli.main(["run", "--allow-rejected"])
    assert seen["allow_rejected"] is True
    assert "'bad': a field handler needs a field" in str(e.value.code)
    with pytest.raises(SystemExit):
        _cli.main(["run"])
    assert seen["allow_rejected"] is False
