"""Serving a registry of handlers over the Herald sidecar's handler stream.

``operator()`` is a coroutine that runs in any asyncio-compatible loop, in
the main thread (``herald run``) or in a thread of an application; several
operators with separate registries can run in one process.

`Operator` keeps the connection: the stream, registration, credits,
reconnects and the graceful stop. Each delivery is executed by
herald._execution, daemons are tracked by herald._daemons, and messages are
encoded by herald._wire; none of them imports this module.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import os
import socket
from typing import Any, Callable, Optional

import grpc

from herald import errors as herald_errors
from herald._daemons import INTERIM_INTERVAL, Daemons
from herald._execution import (Execution, Memos, executor_workers, get_executor,
                               run_in_executor, subhandler)
from herald._logging import logger
from herald._wire import decode_index, encode_index_result, handler_spec
from herald.registry import Registry, get_default_registry
from herald.settings import OperatorSettings
from herald.structs import Memo
from herald.v1 import handler_pb2 as pb
from herald.v1 import handler_pb2_grpc as pb_grpc
from herald.v1 import resource_pb2

__all__ = [
    "ASYNC_CREDITS", "DEFAULT_TARGET", "INTERIM_INTERVAL", "Operator", "decode_index",
    "default_credits", "encode_index_result", "executor_workers", "get_executor",
    "handler_spec", "operator", "run_in_executor", "subhandler",
]

DEFAULT_TARGET = "unix:/tmp/herald.sock"

# Deliveries an operator holds at once for its async handlers, by default:
# they wait for I/O on the event loop, where a thousand cost little (Kopf runs
# every object's handler at once). Sync handlers add the size of the thread
# pool they run in. `credits=` or $HERALD_CREDITS set the total instead.
ASYNC_CREDITS = 1000


def default_credits(handlers: list) -> int:
    """How many deliveries to hold at once for these handlers: ASYNC_CREDITS
    when any is async, plus the executor's threads when any is sync. Daemons
    take no credit and declarative indices get no deliveries: they do not
    count. At least 1."""
    kinds = {inspect.iscoroutinefunction(h.fn) for h in handlers
             if h.cause != "CAUSE_DAEMON" and h.index_by is None}
    return max(1, (ASYNC_CREDITS if True in kinds else 0) +
               (executor_workers() if False in kinds else 0))


class Operator:
    """One operator: a registry served over one stream at a time.

    Not thread-safe: use it from the event loop it runs in; stop it from
    elsewhere with ``stop_flag`` (an asyncio.Event, threading.Event or
    concurrent.futures.Future).
    """

    def __init__(self, *, registry: Optional[Registry] = None, target: Optional[str] = None,
                 credits: Optional[int] = None, memo: Optional[Any] = None,
                 memo_factory: Optional[Callable[[], Any]] = None,
                 stop_wait: float = 10.0, posting_level: Optional[int] = logging.INFO,
                 process_name: Optional[str] = None, allow_rejected: bool = False,
                 settings: Optional[OperatorSettings] = None):
        self.target = target or os.environ.get("HERALD_TARGET", DEFAULT_TARGET)
        self._credits = credits or int(os.environ.get("HERALD_CREDITS", 0)) or None
        self.stop_wait = stop_wait
        self.process_name = process_name or f"{socket.gethostname()}/{os.getpid()}"
        # False: a handler the sidecar rejects stops the operator
        # (RegistrationRejected); True: the rest are served, the errors logged.
        self.allow_rejected = allow_rejected
        self._tasks: set[asyncio.Task] = set()
        self._stopping = asyncio.Event()
        self._daemons = Daemons(self._stopping)
        self._execution = Execution(registry or get_default_registry(),
                                    Memos(memo if memo is not None else Memo(), memo_factory),
                                    self._daemons, posting_level, settings)

    @property
    def credits(self) -> int:
        """Deliveries held at once: `credits=`, else $HERALD_CREDITS, else
        sized by the registry's handlers when registering (default_credits)."""
        return self._credits or default_credits(self.registry.handlers)

    @credits.setter
    def credits(self, value: Optional[int]) -> None:
        self._credits = value

    # The registry, memos and posting level are the execution's.

    @property
    def registry(self) -> Registry:
        return self._execution.registry

    @registry.setter
    def registry(self, value: Registry) -> None:
        self._execution.registry = value

    @property
    def posting_level(self) -> Optional[int]:
        return self._execution.posting_level

    @posting_level.setter
    def posting_level(self, value: Optional[int]) -> None:
        self._execution.posting_level = value

    @property
    def settings(self) -> OperatorSettings:
        """Kopf's OperatorSettings of this operator: what startup handlers get
        as `settings` (herald.settings says which fields mean something)."""
        return self._execution.settings

    @settings.setter
    def settings(self, value: OperatorSettings) -> None:
        self._execution.settings = value

    @property
    def memo(self) -> Any:
        """The operator memo: what activities get; objects' memos start as a
        shallow copy of it."""
        return self._execution.memos.memo

    @memo.setter
    def memo(self, value: Any) -> None:
        self._execution.memos.memo = value

    @property
    def memo_factory(self) -> Optional[Callable[[], Any]]:
        return self._execution.memos.factory

    @memo_factory.setter
    def memo_factory(self, value: Optional[Callable[[], Any]]) -> None:
        self._execution.memos.factory = value

    @property
    def memos(self) -> dict:
        """The objects' memos, by uid (namespace/name without one)."""
        return self._execution.memos.local

    # --- the stream ----------------------------------------------------------

    async def run(self, stop_flag: Any = None, ready_flag: Any = None) -> None:
        """Serves until stopped; reconnects with backoff meanwhile."""
        if not self.registry.handlers:
            raise RuntimeError("no handlers are registered: nothing to serve")
        stopper = asyncio.ensure_future(self._wait_for(stop_flag)) if stop_flag is not None else None
        backoff, waited_logged = 0.5, False
        try:
            while not self._stopping.is_set():
                try:
                    await self._serve_once(ready_flag)
                    backoff, waited_logged = 0.5, False
                    if not self._stopping.is_set():
                        logger.warning("the Herald sidecar ended the stream; reconnecting")
                except grpc.aio.AioRpcError as e:
                    if self._stopping.is_set():
                        break
                    if e.code() == grpc.StatusCode.UNAVAILABLE:
                        if not waited_logged:
                            logger.warning("waiting for the Herald sidecar at %s (%s)",
                                           self.target, e.details())
                            waited_logged = True
                    else:
                        logger.error("handler stream failed: %s: %s", e.code(), e.details())
                try:
                    await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
                except asyncio.TimeoutError:
                    pass
                backoff = min(backoff * 2, 5.0)
        finally:
            if stopper:
                stopper.cancel()

    async def _wait_for(self, flag: Any) -> None:
        if isinstance(flag, asyncio.Event):
            await flag.wait()
        elif isinstance(flag, (asyncio.Future, concurrent.futures.Future)):
            await asyncio.wrap_future(flag) if isinstance(flag, concurrent.futures.Future) else await flag
        else:  # threading.Event and alike.
            while not flag.is_set():
                await asyncio.sleep(0.1)
        self.stop()

    def stop(self) -> None:
        """Stops taking deliveries; running handlers get stop_wait seconds."""
        self._stopping.set()

    async def _serve_once(self, ready_flag: Any) -> None:
        outbox: asyncio.Queue = asyncio.Queue()
        index_ids = tuple(h.id for h in self.registry.handlers if h.cause == "CAUSE_INDEX")
        specs = [handler_spec(h, index_ids) for h in self.registry.handlers]
        await outbox.put(pb.ConnectRequest(register=pb.Register(
            process_name=self.process_name, client="herald-python/0.1.0",
            credits=self.credits, handlers=specs)))

        async def requests():
            while True:
                msg = await outbox.get()
                if msg is None:
                    return
                yield msg

        options = [("grpc.max_receive_message_length", 64 << 20),
                   ("grpc.max_send_message_length", 64 << 20)]
        async with grpc.aio.insecure_channel(self.target, options=options) as channel:
            call = pb_grpc.HandlerServiceStub(channel).Connect(requests())
            stop_task = asyncio.ensure_future(self._stopping.wait())
            try:
                reader = asyncio.ensure_future(self._read(call, outbox, ready_flag))
                done, _ = await asyncio.wait({reader, stop_task}, return_when=asyncio.FIRST_COMPLETED)
                if reader in done:
                    reader.result()
                    return
                # Stopping: running handlers get stop_wait to finish and answer;
                # daemons are told to stop (they restart on another process).
                self._daemons.stop_all("shutdown")
                if self._tasks:
                    logger.info("stopping: waiting up to %.0fs for %d handler(s)",
                                self.stop_wait, len(self._tasks))
                    await asyncio.wait(set(self._tasks), timeout=self.stop_wait)
                for t in list(self._tasks):
                    t.cancel()
                await asyncio.sleep(0.1)  # Let the last outcomes go out.
                await outbox.put(None)
                reader.cancel()
                call.cancel()
            finally:
                stop_task.cancel()

    async def _read(self, call, outbox: asyncio.Queue, ready_flag: Any) -> None:
        async for resp in call:
            kind = resp.WhichOneof("message")
            if kind == "registered":
                r = resp.registered
                logger.info("registered %d handler(s) with the Herald sidecar (%s, %d credits)",
                            len(r.accepted_handler_ids), r.stream_id, self.credits)
                for p in r.pending:
                    logger.warning("handler %r is waiting for its resource: %s",
                                   p.handler_id, p.reason)
                for rej in r.rejections:
                    logger.error("handler %r was rejected: %s", rej.handler_id, rej.reason)
                if r.rejections:
                    if not self.allow_rejected:
                        raise herald_errors.RegistrationRejected(
                            [(rej.handler_id, rej.reason) for rej in r.rejections])
                    logger.warning("serving the other handlers without the %d rejected one(s) "
                                   "(allow_rejected)", len(r.rejections))
                if ready_flag is not None:
                    ready_flag.set()
            elif kind == "delivery":
                if self._stopping.is_set():
                    continue  # Redelivered to another process when the stream ends.
                d = resp.delivery
                task = asyncio.ensure_future(self._execution.handle(d, outbox))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                if d.cause == resource_pb2.CAUSE_DAEMON:
                    self._daemons.start(d.delivery_id, task)
            elif kind == "stop":
                self._daemons.stop(resp.stop)
            elif kind == "protocol_error":
                e = resp.protocol_error
                logger.error("the sidecar says %s%s: %s", pb.ProtocolErrorCode.Name(e.code),
                             f" (delivery {e.delivery_id})" if e.delivery_id else "", e.message)

    async def _handle(self, d: pb.Delivery, outbox: asyncio.Queue) -> None:
        """Executes one delivery, answering it on `outbox`."""
        await self._execution.handle(d, outbox)


# Kopf's operator() arguments that the sidecar's flags decide; given, they
# are logged once and otherwise ignored.
_SIDECAR_ARGUMENTS = {
    "clusterwide": "--namespaces", "namespaces": "--namespaces", "namespace": "--namespaces",
    "standalone": "its leader election", "priority": "its leader election",
    "peering_name": "its leader election", "identity": "its leader election",
    "liveness_endpoint": "--health_listen", "vault": "--kubeconfig",
}


async def operator(*, registry: Optional[Registry] = None, target: Optional[str] = None,
                   credits: Optional[int] = None, memo: Optional[Any] = None,
                   memo_factory: Optional[Callable[[], Any]] = None,
                   stop_flag: Any = None, ready_flag: Any = None, stop_wait: float = 10.0,
                   posting_level: Optional[int] = logging.INFO,
                   allow_rejected: bool = False, settings: Optional[OperatorSettings] = None,
                   lifecycle: Any = None, indexers: Any = None, memories: Any = None,
                   insights: Any = None, identity: Any = None,
                   standalone: Optional[bool] = None, priority: Optional[int] = None,
                   peering_name: Optional[str] = None, liveness_endpoint: Optional[str] = None,
                   clusterwide: bool = False, namespaces: Any = (), namespace: Any = None,
                   vault: Any = None, _command: Any = None) -> None:
    """Serves `registry` (default: the decorators' registry) until stop_flag.

    Runs in any asyncio-compatible loop, in any thread. `memo` is the
    operator memo, shallow-copied into each object's local memo on first
    sight; `memo_factory` makes the local memos (a custom class); `settings`
    is Kopf's OperatorSettings (herald.settings). When the sidecar rejects
    a handler (an invalid spec), raises RegistrationRejected naming the
    handlers and the reasons, unless `allow_rejected`: then the others are
    served and the rejections logged as errors.

    Kopf's other arguments are accepted: namespaces, peering and the
    liveness endpoint are the sidecar's flags (a warning names the flag
    when one is given); lifecycle, indexers, memories, insights and
    _command are Kopf's internals and have no effect.
    """
    given = dict(clusterwide=clusterwide, namespaces=namespaces, namespace=namespace,
                 standalone=standalone, priority=priority, peering_name=peering_name,
                 identity=identity, liveness_endpoint=liveness_endpoint, vault=vault)
    for name, value in given.items():
        if value:
            logger.warning("operator(%s=...): the Herald sidecar's %s decides this; ignored",
                           name, _SIDECAR_ARGUMENTS[name])
    op = Operator(registry=registry, target=target, credits=credits, memo=memo,
                  memo_factory=memo_factory, stop_wait=stop_wait,
                  posting_level=posting_level, allow_rejected=allow_rejected,
                  settings=settings)
    await op.run(stop_flag=stop_flag, ready_flag=ready_flag)
