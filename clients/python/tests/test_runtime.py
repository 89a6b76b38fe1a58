"""Unit tests of herald.runtime: the operator's connection (registration,
deliveries and stops dispatched, graceful stop, reconnects), against a fake
handler stream; and the names it has always exported."""

import asyncio
import logging

import pytest

import herald
from herald import runtime
from herald.v1 import handler_pb2 as pb
from herald.v1 import resource_pb2


def test_public_names_are_importable_where_they_were():
    for name in herald.__all__:
        assert getattr(herald, name) is not None, name
    from herald import _daemons, _execution, _wire
    names = {"Operator": runtime.Operator, "operator": runtime.operator,
             "default_credits": runtime.default_credits, "handler_spec": _wire.handler_spec,
             "decode_index": _wire.decode_index, "encode_index_result": _wire.encode_index_result,
             "executor_workers": _execution.executor_workers,
             "get_executor": _execution.get_executor,
             "run_in_executor": _execution.run_in_executor, "subhandler": _execution.subhandler}
    for name, value in names.items():
        assert getattr(runtime, name) is value, name
        assert name in runtime.__all__
        if name in herald.__all__:
            assert getattr(herald, name) is value, name
    assert runtime.DEFAULT_TARGET == "unix:/tmp/herald.sock" and runtime.ASYNC_CREDITS == 1000
    assert runtime.INTERIM_INTERVAL == _daemons.INTERIM_INTERVAL == 1.0


def test_modules_import_one_way():
    """runtime -> _execution -> _daemons -> _wire, _logging: nothing below
    the connection imports it, and nothing imports what is above it."""
    import ast
    from pathlib import Path
    src = Path(herald.__file__).parent
    below = {"runtime": {"_execution", "_daemons", "_wire", "_logging"},
             "_execution": {"_daemons", "_wire", "_logging"},
             "_daemons": {"_wire", "_logging"}, "_wire": set(), "_logging": set()}
    layers = set(below)
    for module, allowed in below.items():
        tree = ast.parse((src / f"{module}.py").read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        imported |= {f"herald.{a.name}" for n in ast.walk(tree)
                     if isinstance(n, ast.ImportFrom) and n.module == "herald" for a in n.names}
        used = {name.split(".")[1] for name in imported
                if name.startswith("herald.") and name.split(".")[1] in layers}
        assert used <= allowed, (module, used - allowed)


class _Stream:
    """A handler stream: records what the client sends (`sent`) and answers
    with what the test puts in `responses` (None ends the stream)."""

    def __init__(self, requests):
        self.sent: asyncio.Queue = asyncio.Queue()
        self.responses: asyncio.Queue = asyncio.Queue()
        self.pump = asyncio.ensure_future(self._pump(requests))

    async def _pump(self, requests):
        async for message in requests:
            await self.sent.put(message)
        await self.sent.put(None)  # The client ended its side.

    def __aiter__(self):
        return self._responses()

    async def _responses(self):
        while True:
            r = await self.responses.get()
            if r is None:
                return
            yield r

    def cancel(self):
        pass

    async def next_sent(self):
        return await asyncio.wait_for(self.sent.get(), 5)


def _fake_sidecar(monkeypatch):
    streams: asyncio.Queue = asyncio.Queue()

    class Stub:
        def __init__(self, channel):
            pass

        def Connect(self, requests):
            stream = _Stream(requests)
            streams.put_nowait(stream)
            return stream
    monkeypatch.setattr(runtime.pb_grpc, "HandlerServiceStub", Stub)
    return streams


def _delivery(delivery_id, handler_id, cause):
    d = pb.Delivery(delivery_id=delivery_id, handler_id=handler_id, cause=cause,
                    body_json='{"metadata":{"name":"x","namespace":"ns"}}')
    d.object.namespace, d.object.name, d.object.uid = "ns", "x", delivery_id
    return pb.ConnectResponse(delivery=d)


def test_deliveries_and_stops_are_served_until_the_operator_stops(monkeypatch):
    reg = herald.Registry()
    daemon_started = []
    herald.on.create("kopfexamples", id="h", registry=reg)(lambda **_: "done")

    @herald.daemon("kopfexamples", id="dmn", registry=reg)
    async def dmn(stopped, **_):
        daemon_started.append(stopped)
        await stopped.wait(60)

    async def started(n):
        while len(daemon_started) < n:
            await asyncio.sleep(0.01)
        return daemon_started[n - 1]

    async def go():
        streams = _fake_sidecar(monkeypatch)
        stop, ready = asyncio.Event(), asyncio.Event()
        op = asyncio.ensure_future(herald.operator(
            registry=reg, target="unix:/nonexistent/herald.sock", credits=5,
            stop_flag=stop, ready_flag=ready, stop_wait=5))
        s = await asyncio.wait_for(streams.get(), 5)
        register = (await s.next_sent()).register
        assert [h.id for h in register.handlers] == ["h", "dmn"] and register.credits == 5
        await s.responses.put(pb.ConnectResponse(registered=pb.Registered(
            stream_id="s-1", accepted_handler_ids=["h", "dmn"])))
        await asyncio.wait_for(ready.wait(), 5)

        await s.responses.put(_delivery("d-1", "h", resource_pb2.CAUSE_CREATE))
        o = (await s.next_sent()).outcome
        assert (o.delivery_id, o.status, o.result_json) == \
            ("d-1", pb.OUTCOME_STATUS_SUCCESS, '"done"')

        # A stop request sets the daemon's flag; it returns and reports it ended.
        await s.responses.put(_delivery("d-2", "dmn", resource_pb2.CAUSE_DAEMON))
        flag = await asyncio.wait_for(started(1), 5)
        await s.responses.put(pb.ConnectResponse(stop=pb.Stop(
            delivery_id="d-2", reason=pb.STOP_REASON_FILTER_MISMATCH)))
        o = (await s.next_sent()).outcome
        assert (o.delivery_id, o.status) == ("d-2", pb.OUTCOME_STATUS_SUCCESS)
        assert flag.reason == "STOP_REASON_FILTER_MISMATCH" and flag.by_sidecar

        # The operator stops: the running daemon is told so and gets no
        # outcome (it restarts on another process); the client ends its side.
        await s.responses.put(_delivery("d-3", "dmn", resource_pb2.CAUSE_DAEMON))
        flag = await asyncio.wait_for(started(2), 5)
        stop.set()
        await asyncio.wait_for(op, 10)
        assert flag.reason == "shutdown" and not flag.by_sidecar
        assert await s.next_sent() is None
        assert streams.empty()  # No reconnect once stopped.
    asyncio.run(go())


def test_a_stream_the_sidecar_ends_is_reconnected_and_registered_again(monkeypatch, caplog):
    reg = herald.Registry()
    herald.on.create("kopfexamples", id="h", registry=reg)(lambda **_: None)

    async def go():
        streams = _fake_sidecar(monkeypatch)
        stop = asyncio.Event()
        op = asyncio.ensure_future(herald.operator(
            registry=reg, target="unix:/nonexistent/herald.sock", stop_flag=stop))
        first = await asyncio.wait_for(streams.get(), 5)
        assert (await first.next_sent()).WhichOneof("message") == "register"
        await first.responses.put(None)  # The sidecar ends the stream.
        second = await asyncio.wait_for(streams.get(), 5)
        assert (await second.next_sent()).WhichOneof("message") == "register"
        stop.set()
        await asyncio.wait_for(op, 10)
    asyncio.run(go())
    assert ("herald", logging.WARNING, "the Herald sidecar ended the stream; reconnecting") in \
        caplog.record_tuples


def test_kopfs_operator_arguments_are_accepted_and_the_sidecars_warned(caplog):
    settings = herald.OperatorSettings()
    with caplog.at_level(logging.WARNING, "herald"):
        with pytest.raises(RuntimeError, match="no handlers"):
            asyncio.run(herald.operator(registry=herald.Registry(), settings=settings,
                                        namespaces=["a"], clusterwide=False, standalone=True,
                                        liveness_endpoint="http://:8080/healthz",
                                        lifecycle=None, memories=None))
    warned = [r.getMessage() for r in caplog.records]
    assert any("namespaces=" in m and "--namespaces" in m for m in warned)
    assert any("standalone=" in m for m in warned) and any("--health_listen" in m for m in warned)
    assert not any("clusterwide" in m for m in warned)  # Not given.
    assert herald.Operator(settings=settings).settings is settings
