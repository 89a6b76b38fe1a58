"""Serving a registry of handlers over the Herald sidecar's handler stream.

``operator()`` is a coroutine that runs in any asyncio-compatible loop, in
the main thread (``herald run``) or in a thread of an application; several
operators with separate registries can run in one process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import copy
import datetime
import functools
import inspect
import json
import logging
import os
import socket
from typing import Any, Callable, Optional

import grpc

from herald import errors as herald_errors
from herald.registry import Handler, Registry, get_default_registry
from herald.structs import (ABSENT, PRESENT, DaemonStopped, ErrorsMode, Memo, Patch, Resource,
                            merge_patch_between)
from herald.v1 import handler_pb2 as pb
from herald.v1 import handler_pb2_grpc as pb_grpc
from herald.v1 import resource_pb2

logger = logging.getLogger("herald")

DEFAULT_TARGET = "unix:/tmp/herald.sock"
_REASONS = {"CAUSE_CREATE": "create", "CAUSE_UPDATE": "update", "CAUSE_DELETE": "delete",
            "CAUSE_RESUME": "resume", "CAUSE_FIELD": "update", "CAUSE_EVENT": "event",
            "CAUSE_TIMER": "timer", "CAUSE_INDEX": "index", "CAUSE_DAEMON": "daemon",
            "CAUSE_STARTUP": "startup", "CAUSE_CLEANUP": "cleanup", "CAUSE_PROBE": "probe"}
_ACTIVITIES = ("CAUSE_STARTUP", "CAUSE_CLEANUP", "CAUSE_PROBE")
# How often a running daemon's patch, memo changes and Events are sent.
INTERIM_INTERVAL = 1.0

# Deliveries an operator holds at once for its async handlers, by default:
# they wait for I/O on the event loop, where a thousand cost little (Kopf runs
# every object's handler at once). Sync handlers add the size of the thread
# pool they run in. `credits=` or $HERALD_CREDITS set the total instead.
ASYNC_CREDITS = 1000

_executor: Optional[concurrent.futures.ThreadPoolExecutor] = None
# The sub-handlers a running handler declares, in order: (id, function).
_subhandlers: contextvars.ContextVar[Optional[list]] = contextvars.ContextVar(
    "herald_subhandlers", default=None)


def subhandler(*, id: Optional[str] = None) -> Callable:
    """Declares a sub-handler inside a handler, as Kopf's ``@kopf.subhandler``:

        @herald.on.create('kopfexamples')
        def create_fn(spec, **_):
            for item in spec.get('items', []):
                @herald.subhandler(id=f'item-{item}')
                def create_item(item=item, **_):
                    ...

    Sub-handlers run after the handler returns, with the same arguments. Each
    keeps its own progress under ``<handler id>/<id>``: ones that succeeded
    are not run again; the handler is called again until all are done.
    """
    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        declared = _subhandlers.get()
        if declared is None:
            raise RuntimeError("herald.subhandler is for use inside a running handler")
        from herald.on import _callable_id
        declared.append((id or _callable_id(fn), fn))
        return fn
    return decorator


def executor_workers() -> int:
    """The threads of the pool sync handlers run in: the pool's own once it
    exists, else $HERALD_EXECUTOR_WORKERS or cores x 4."""
    if _executor is not None:
        return _executor._max_workers
    return int(os.environ.get("HERALD_EXECUTOR_WORKERS", 0)) or (os.cpu_count() or 1) * 4


def get_executor() -> concurrent.futures.ThreadPoolExecutor:
    """The pool that sync handlers run in (cores x 4 threads by default)."""
    global _executor
    if _executor is None:
        _executor = concurrent.futures.ThreadPoolExecutor(max_workers=executor_workers(),
                                                          thread_name_prefix="herald-sync")
    return _executor


def default_credits(handlers: list) -> int:
    """How many deliveries to hold at once for these handlers: ASYNC_CREDITS
    when any is async, plus the executor's threads when any is sync. Daemons
    take no credit and declarative indices get no deliveries: they do not
    count. At least 1."""
    kinds = {inspect.iscoroutinefunction(h.fn) for h in handlers
             if h.cause != "CAUSE_DAEMON" and h.index_by is None}
    return max(1, (ASYNC_CREDITS if True in kinds else 0) +
               (executor_workers() if False in kinds else 0))


async def run_in_executor(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Runs CPU-bound or blocking work in the handlers' pool and waits for it."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(get_executor(), functools.partial(fn, *args, **kwargs))


def _duration(seconds: Optional[float]):
    from google.protobuf import duration_pb2
    d = duration_pb2.Duration()
    d.FromMilliseconds(int(seconds * 1000))
    return d


def _reason(e: BaseException) -> str:
    """An exception as the reason of an outcome: its type and message."""
    try:
        text = str(e)
    except Exception:  # noqa: BLE001 - a broken __str__ still leaves the type
        text = "(no message)"
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _cut(message: str, limit: int = 4096) -> str:
    """A message for an outcome, cut so that one error cannot fill the stream."""
    return message if len(message) <= limit else message[:limit - 3] + "..."


def _meta_filters(filters: dict, target) -> None:
    for key, want in filters.items():
        if callable(want):
            continue  # Evaluated by the client (see Operator._matches).
        f = target[key]
        if want is PRESENT:
            f.match = pb.META_MATCH_PRESENT
        elif want is ABSENT:
            f.match = pb.META_MATCH_ABSENT
        else:
            f.match = pb.META_MATCH_EQUALS
            f.value = str(want)


def _client_filtered(h: Handler) -> bool:
    """Whether the client decides part of the handler's match: a `when`
    callback, or callable label or annotation filters (Kopf's semantics)."""
    return h.when is not None or any(
        callable(v) for v in (*h.labels.values(), *h.annotations.values()))


def _value_filter(value: Any, target) -> None:
    if value is PRESENT:
        target.match = pb.VALUE_MATCH_PRESENT
    elif value is ABSENT:
        target.match = pb.VALUE_MATCH_ABSENT
    else:
        target.match = pb.VALUE_MATCH_EQUALS
        target.value_json = json.dumps(value)


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


def handler_spec(h: Handler, index_ids: tuple = ()) -> pb.HandlerSpec:
    """The wire form of a registered handler; every handler but the indices
    themselves asks for the registry's indices."""
    s = pb.HandlerSpec(id=h.id, resource=h.resource,
                       cause=resource_pb2.Cause.Value(h.cause), field=h.field,
                       optional=h.optional, has_when=_client_filtered(h))
    _meta_filters(h.labels, s.labels)
    _meta_filters(h.annotations, s.annotations)
    for name, target in (("value", s.value_filter), ("old", s.old_filter), ("new", s.new_filter)):
        if name not in h._unset and h.cause in ("CAUSE_UPDATE", "CAUSE_FIELD", "CAUSE_CREATE"):
            _value_filter(getattr(h, name), target)
    if h.retries is not None:
        s.retries = h.retries
    if h.timeout is not None:
        s.timeout.CopyFrom(_duration(h.timeout))
    if h.backoff is not None:
        s.backoff.CopyFrom(_duration(h.backoff))
    if h.cause != "CAUSE_INDEX" and h.cause not in _ACTIVITIES:
        s.indices.extend(index_ids)
    if h.index_by is not None:
        if h.index_by.get("label") is not None:
            s.index.label = h.index_by["label"]
        else:
            s.index.field = h.index_by["field"]
    if h.daemon is not None:
        if h.daemon.get("initial_delay"):
            s.daemon.initial_delay.CopyFrom(_duration(h.daemon["initial_delay"]))
        if h.daemon.get("cancellation_backoff") is not None:
            s.daemon.cancellation_backoff.CopyFrom(_duration(h.daemon["cancellation_backoff"]))
        if h.daemon.get("cancellation_timeout") is not None:
            s.daemon.cancellation_timeout.CopyFrom(_duration(h.daemon["cancellation_timeout"]))
    if h.timer is not None:
        s.timer.interval.CopyFrom(_duration(h.timer["interval"]))
        if h.timer.get("initial_delay"):
            s.timer.initial_delay.CopyFrom(_duration(h.timer["initial_delay"]))
        if h.timer.get("idle"):
            s.timer.idle.CopyFrom(_duration(h.timer["idle"]))
        s.timer.sharp = bool(h.timer.get("sharp"))
    if h.errors is not None:
        mode = h.errors.value if isinstance(h.errors, ErrorsMode) else str(h.errors)
        s.errors = pb.ErrorsMode.Value(mode)
    return s


class _ObjectLogger(logging.LoggerAdapter):
    """Prefixes messages with the object's namespace/name; collects records to
    post as Kubernetes Events."""

    def __init__(self, base: logging.Logger, key: str, posting_level: Optional[int]):
        super().__init__(base, {})
        self.key = key
        self.posting_level = posting_level
        self.events: list[tuple[str, str, str]] = []

    def log(self, level, msg, *args, **kwargs):  # noqa: D401 - logging API
        if self.posting_level is not None and level >= self.posting_level:
            text = msg % args if args else str(msg)
            self.events.append(("WARNING" if level >= logging.WARNING else "NORMAL",
                                logging.getLevelName(level).capitalize() or "Logging", text))
        super().log(level, msg, *args, **kwargs)

    def process(self, msg, kwargs):
        return f"[{self.key}] {msg}", kwargs


def _add_events(changes, log: _ObjectLogger) -> None:
    for etype, reason, message in log.events:
        changes.events.add(type=pb.EventType.Value("EVENT_TYPE_" + etype),
                           reason=reason, message=message)


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
                 process_name: Optional[str] = None, allow_rejected: bool = False):
        self.registry = registry or get_default_registry()
        self.target = target or os.environ.get("HERALD_TARGET", DEFAULT_TARGET)
        self._credits = credits or int(os.environ.get("HERALD_CREDITS", 0)) or None
        self.memo = memo if memo is not None else Memo()
        self.memo_factory = memo_factory
        self.stop_wait = stop_wait
        self.posting_level = posting_level
        self.process_name = process_name or f"{socket.gethostname()}/{os.getpid()}"
        # False: a handler the sidecar rejects stops the operator
        # (RegistrationRejected); True: the rest are served, the errors logged.
        self.allow_rejected = allow_rejected
        self.memos: dict[str, Any] = {}
        self._tasks: set[asyncio.Task] = set()
        # Running daemons: delivery id -> (task, stop flag).
        self._daemons: dict[str, tuple[asyncio.Task, DaemonStopped]] = {}
        self._stopping = asyncio.Event()

    @property
    def credits(self) -> int:
        """Deliveries held at once: `credits=`, else $HERALD_CREDITS, else
        sized by the registry's handlers when registering (default_credits)."""
        return self._credits or default_credits(self.registry.handlers)

    @credits.setter
    def credits(self, value: Optional[int]) -> None:
        self._credits = value

    # --- memos ---------------------------------------------------------------

    def _local_memo(self, uid: str) -> Any:
        memo = self.memos.get(uid)
        if memo is None:
            # A shallow copy of the operator memo, as in Kopf; into an
            # instance of the custom class when there is one.
            if self.memo_factory is None:
                memo = copy.copy(self.memo)
            else:
                memo = self.memo_factory()
                items = self.memo.items() if isinstance(self.memo, dict) else vars(self.memo).items()
                for k, v in items:
                    if isinstance(memo, dict):
                        memo[k] = v
                    else:
                        setattr(memo, k, v)
            self.memos[uid] = memo
        return memo

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
                for _, flag in self._daemons.values():
                    flag.set("shutdown")
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
                task = asyncio.ensure_future(self._handle(d, outbox))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                if d.cause == resource_pb2.CAUSE_DAEMON:
                    self._daemons[d.delivery_id] = (task, DaemonStopped())
                    task.add_done_callback(
                        lambda _, did=d.delivery_id: self._daemons.pop(did, None))
            elif kind == "stop":
                stop = resp.stop
                running = self._daemons.get(stop.delivery_id)
                if running is not None:
                    task, flag = running
                    flag.set(pb.StopReason.Name(stop.reason))
                    flag.by_sidecar = True
                    if stop.force:
                        task.cancel()
            elif kind == "protocol_error":
                e = resp.protocol_error
                logger.error("the sidecar says %s%s: %s", pb.ProtocolErrorCode.Name(e.code),
                             f" (delivery {e.delivery_id})" if e.delivery_id else "", e.message)

    # --- one delivery --------------------------------------------------------

    def _kwargs(self, d, h: Handler, log: _ObjectLogger, patch: Patch, shared: dict) -> dict:
        body = json.loads(d.body_json) if d.body_json else {}
        meta = body.get("metadata", {})
        started = (d.started.ToDatetime(tzinfo=datetime.timezone.utc)
                   if d.HasField("started") else datetime.datetime.now(datetime.timezone.utc))
        old = json.loads(d.old_json) if d.old_json else None
        new = json.loads(d.new_json) if d.new_json else None
        diff = tuple((op, tuple(path), o, n) for op, path, o, n in
                     (json.loads(d.diff_json) if d.diff_json else []))
        r = d.resource
        kwargs = dict(
            body=body, spec=body.get("spec", {}), meta=meta, metadata=meta,
            status=body.get("status", {}), name=meta.get("name"),
            namespace=meta.get("namespace"), labels=meta.get("labels", {}),
            annotations=meta.get("annotations", {}), uid=meta.get("uid"),
            patch=patch,
            memo=(self.memo if resource_pb2.Cause.Name(d.cause) in _ACTIVITIES
                  else self._local_memo(d.object.uid or f"{d.object.namespace}/{d.object.name}")),
            shared_memo=shared, logger=log, retry=d.retry, started=started,
            runtime=datetime.datetime.now(datetime.timezone.utc) - started,
            old=old, new=new, diff=diff, reason=_REASONS.get(resource_pb2.Cause.Name(d.cause), ""),
            resource=Resource(r.group, r.version, r.plural, r.kind, r.namespaced),
            executor=run_in_executor,
        )
        if d.cause == resource_pb2.CAUSE_DAEMON:
            running = self._daemons.get(d.delivery_id)
            kwargs["stopped"] = running[1] if running else DaemonStopped()
            kwargs["restarted"] = d.restarted
        for name, text in d.indices_json.items():
            kwargs[name] = decode_index(text)
        if d.cause == resource_pb2.CAUSE_EVENT:
            kwargs["type"] = d.event_type
            kwargs["event"] = {"type": d.event_type, "object": body}
        return kwargs

    async def _call(self, fn: Callable[..., Any], kwargs: dict) -> Any:
        if inspect.iscoroutinefunction(fn):
            return await fn(**kwargs)
        loop = asyncio.get_running_loop()
        # The thread sees this task's context (for herald.subhandler).
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(get_executor(),
                                          functools.partial(ctx.run, fn, **kwargs))

    async def _matches(self, h: Handler, kwargs: dict) -> bool:
        """The filters the sidecar left to the client, in Kopf's order: callable
        label filters, callable annotation filters (each called with the value,
        None when absent, and the handler's kwargs), then `when`."""
        for pattern, content in ((h.labels, kwargs["labels"]),
                                 (h.annotations, kwargs["annotations"])):
            for key, want in pattern.items():
                if callable(want) and not await self._call(
                        functools.partial(want, content.get(key)), kwargs):
                    return False
        return h.when is None or bool(await self._call(h.when, kwargs))

    async def _run_subhandlers(self, d, h: Handler, declared: list, kwargs: dict,
                               outcome, log: _ObjectLogger) -> None:
        done = set(d.done_subhandler_ids)
        for sub_id, fn in declared:
            child_id = f"{h.id}/{sub_id}"
            if child_id in done:
                continue
            child = outcome.subhandlers.add(id=child_id)
            try:
                await self._call(fn, kwargs)
                child.status = pb.OUTCOME_STATUS_SUCCESS
                log.logger.info("[%s] sub-handler %s succeeded", log.key, child_id)
            except herald_errors.TemporaryError as e:
                child.status = pb.OUTCOME_STATUS_TEMPORARY_ERROR
                child.message = str(e)
                if e.delay is not None:
                    child.delay.CopyFrom(_duration(e.delay))
                log.error("sub-handler %s failed temporarily: %s", child_id, e)
            except herald_errors.PermanentError as e:
                child.status = pb.OUTCOME_STATUS_PERMANENT_ERROR
                child.message = str(e)
                log.error("sub-handler %s failed permanently: %s", child_id, e)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - any error is an outcome
                child.status = pb.OUTCOME_STATUS_UNEXPECTED_ERROR
                child.message = f"{type(e).__name__}: {e}"
                log.exception("sub-handler %s failed with an unexpected error", child_id)

    async def _handle(self, d, outbox: asyncio.Queue) -> None:
        """Answers one delivery with exactly one outcome, whatever fails on
        the way (a daemon of a process that stops is the one exception: it
        restarts elsewhere)."""
        answered = False

        async def answer(outcome) -> None:
            nonlocal answered
            answered = True
            await outbox.put(pb.ConnectRequest(outcome=outcome))

        try:
            await self._handle_delivery(d, answer, outbox)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a delivery is always answered
            logger.exception("delivery %s of %s failed in the client", d.delivery_id, d.handler_id)
            if not answered:
                await outbox.put(pb.ConnectRequest(outcome=pb.Outcome(
                    delivery_id=d.delivery_id, status=pb.OUTCOME_STATUS_UNEXPECTED_ERROR,
                    message=_cut(f"the client failed to handle the delivery: {_reason(e)}"))))

    async def _handle_delivery(self, d, answer: Callable, outbox: asyncio.Queue) -> None:
        h = self.registry.get(d.handler_id)
        key = (f"{d.object.namespace}/{d.object.name}" if d.object.namespace
               else d.object.name or d.handler_id)
        log = _ObjectLogger(logging.getLogger(f"herald.handlers.{d.handler_id}"), key,
                            self.posting_level)
        outcome = pb.Outcome(delivery_id=d.delivery_id)
        if h is None:
            outcome.status = pb.OUTCOME_STATUS_PERMANENT_ERROR
            outcome.message = f"this process has no handler {d.handler_id!r}"
            await answer(outcome)
            return
        patch = Patch()
        daemon = d.cause == resource_pb2.CAUSE_DAEMON
        try:
            shared = json.loads(d.memo_json) if d.memo_json else {}
            shared_before = copy.deepcopy(shared)
            kwargs = self._kwargs(d, h, log, patch, shared)
        except Exception as e:  # noqa: BLE001 - too deep, or not JSON: an outcome
            outcome.status = pb.OUTCOME_STATUS_UNEXPECTED_ERROR
            outcome.message = _cut(f"the delivery cannot be decoded: {_reason(e)}")
            log.error("handler %s not called: %s", h.id, outcome.message)
            _add_events(outcome.changes, log)
            await answer(outcome)
            return
        result = None
        flusher = None
        if daemon:
            state = {"memo": shared_before}
            flusher = asyncio.ensure_future(self._flush_daemon(d, patch, shared, state, log, outbox))
        try:
            if not await self._matches(h, kwargs):
                outcome.status = pb.OUTCOME_STATUS_SKIPPED
            else:
                declared: list = []
                token = _subhandlers.set(declared)
                try:
                    result = await self._call(h.fn, kwargs)
                finally:
                    _subhandlers.reset(token)
                outcome.status = pb.OUTCOME_STATUS_SUCCESS
                if declared:
                    await self._run_subhandlers(d, h, declared, kwargs, outcome, log)
        except herald_errors.TemporaryError as e:
            outcome.status = pb.OUTCOME_STATUS_TEMPORARY_ERROR
            outcome.message = str(e)
            if e.delay is not None:
                outcome.delay.CopyFrom(_duration(e.delay))
            log.error("handler %s failed temporarily: %s", h.id, e)
        except herald_errors.PermanentError as e:
            outcome.status = pb.OUTCOME_STATUS_PERMANENT_ERROR
            outcome.message = str(e)
            log.error("handler %s failed permanently: %s", h.id, e)
        except asyncio.CancelledError:
            stopped = kwargs.get("stopped")
            if not (daemon and stopped and getattr(stopped, "by_sidecar", False)):
                if flusher:
                    flusher.cancel()
                raise  # Stopping: no outcome; the sidecar redelivers.
            # A daemon cancelled at the sidecar's request: report it ended.
            outcome.status = pb.OUTCOME_STATUS_SUCCESS
            outcome.message = "cancelled after a stop request"
        except Exception as e:  # noqa: BLE001 - any error is an outcome
            outcome.status = pb.OUTCOME_STATUS_UNEXPECTED_ERROR
            outcome.message = _cut(_reason(e))
            log.exception("handler %s failed with an unexpected error", h.id)
        if flusher:
            flusher.cancel()
            shared_before = state["memo"]
            stopped = kwargs["stopped"]
            if self._stopping.is_set() and not getattr(stopped, "by_sidecar", False):
                return  # This process stops: the daemon restarts on another.
        # Encoded piece by piece: what cannot be encoded makes a success an
        # unexpected error naming it (an error keeps its status, the reason
        # added); the rest still goes out, as with any failed handler.
        failures = []

        def encode(what: str, fn: Callable[[], Any]) -> Optional[str]:
            try:
                return fn()
            except Exception as e:  # noqa: BLE001 - unserialisable, circular or too deep
                failures.append(f"the {what} cannot be encoded as JSON: {_reason(e)}")
                return None

        if outcome.status == pb.OUTCOME_STATUS_SUCCESS and (
                h.cause == "CAUSE_INDEX" or result is not None):
            text = encode("result", (lambda: encode_index_result(result))
                          if h.cause == "CAUSE_INDEX" else (lambda: json.dumps(result)))
            if text is not None:
                outcome.result_json = text
        body_patch = dict(patch)
        status_patch = body_patch.pop("status", None)
        if body_patch:
            outcome.changes.patch_json = encode("patch", lambda: json.dumps(body_patch)) or ""
        if status_patch:
            outcome.changes.status_patch_json = encode(
                "status patch", lambda: json.dumps(status_patch)) or ""
        memo_patch = encode("memo patch", lambda: json.dumps(
            merge_patch_between(shared_before, shared) or None))
        if memo_patch and memo_patch != "null":
            outcome.changes.memo_patch_json = memo_patch
        if failures:
            log.error("handler %s failed: %s", h.id, "; ".join(failures))
            if outcome.status in (pb.OUTCOME_STATUS_TEMPORARY_ERROR,
                                  pb.OUTCOME_STATUS_PERMANENT_ERROR,
                                  pb.OUTCOME_STATUS_UNEXPECTED_ERROR):
                failures.insert(0, outcome.message)
            else:
                outcome.status = pb.OUTCOME_STATUS_UNEXPECTED_ERROR
                outcome.ClearField("result_json")
            outcome.message = _cut("; ".join(failures))
        elif (outcome.status == pb.OUTCOME_STATUS_SUCCESS and not daemon
              and all(c.status == pb.OUTCOME_STATUS_SUCCESS for c in outcome.subhandlers)):
            # Logged, not posted: an Event per success would double the
            # API writes of every handled change.
            log.logger.info("[%s] handler %s succeeded", log.key, h.id)
        _add_events(outcome.changes, log)
        await answer(outcome)
        gone = (d.cause == resource_pb2.CAUSE_DELETE and outcome.status == pb.OUTCOME_STATUS_SUCCESS) or \
            (d.cause == resource_pb2.CAUSE_EVENT and d.event_type == "DELETED")
        if gone:  # The object's local memo goes with the object.
            self.memos.pop(d.object.uid or f"{d.object.namespace}/{d.object.name}", None)
        if h.after is not None:
            try:
                await self._call(h.after, dict(kwargs, outcome=pb.OutcomeStatus.Name(outcome.status),
                                               result=result))
            except Exception:  # noqa: BLE001 - a callback never breaks the stream
                log.exception("the after-callback of %s failed", h.id)

    async def _flush_daemon(self, d, patch: Patch, shared: dict, state: dict,
                            log: _ObjectLogger, outbox: asyncio.Queue) -> None:
        """Sends a running daemon's changes every INTERIM_INTERVAL seconds."""
        while True:
            await asyncio.sleep(INTERIM_INTERVAL)
            changes = pb.ObjectChanges()
            body_patch = copy.deepcopy(dict(patch))
            patch.clear()
            status_patch = body_patch.pop("status", None)
            if body_patch:
                changes.patch_json = json.dumps(body_patch)
            if status_patch:
                changes.status_patch_json = json.dumps(status_patch)
            memo_patch = merge_patch_between(state["memo"], shared)
            if memo_patch:
                changes.memo_patch_json = json.dumps(memo_patch)
                state["memo"] = copy.deepcopy(shared)
            events, log.events[:] = list(log.events), []
            for etype, reason, message in events:
                changes.events.add(type=pb.EventType.Value("EVENT_TYPE_" + etype),
                                   reason=reason, message=message)
            if changes.ByteSize():
                await outbox.put(pb.ConnectRequest(interim_changes=pb.InterimChanges(
                    delivery_id=d.delivery_id, changes=changes)))


async def operator(*, registry: Optional[Registry] = None, target: Optional[str] = None,
                   credits: Optional[int] = None, memo: Optional[Any] = None,
                   memo_factory: Optional[Callable[[], Any]] = None,
                   stop_flag: Any = None, ready_flag: Any = None, stop_wait: float = 10.0,
                   posting_level: Optional[int] = logging.INFO,
                   allow_rejected: bool = False) -> None:
    """Serves `registry` (default: the decorators' registry) until stop_flag.

    Runs in any asyncio-compatible loop, in any thread. `memo` is the
    operator memo, shallow-copied into each object's local memo on first
    sight; `memo_factory` makes the local memos (a custom class). When the
    sidecar rejects a handler (an invalid spec), raises RegistrationRejected
    naming the handlers and the reasons, unless `allow_rejected`: then the
    others are served and the rejections logged as errors.
    """
    op = Operator(registry=registry, target=target, credits=credits, memo=memo,
                  memo_factory=memo_factory, stop_wait=stop_wait,
                  posting_level=posting_level, allow_rejected=allow_rejected)
    await op.run(stop_flag=stop_flag, ready_flag=ready_flag)
