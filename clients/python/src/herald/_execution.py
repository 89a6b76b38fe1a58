"""Executing one delivery: the handler's keyword arguments, the filters left
to the client, the call (a coroutine on the event loop, a plain function in
the executor's threads), its sub-handlers, and the one outcome that answers
the delivery, with Kopf's semantics:

- a handler that returns succeeds (its result and changes are sent);
- `TemporaryError` is a temporary error (retried after its delay),
  `PermanentError` a permanent one, any other exception an unexpected error
  (the handler's errors mode decides);
- a filter that does not match makes it SKIPPED;
- whatever else fails in the client (a delivery it cannot decode, a result
  or change that is not JSON) is an unexpected error naming the reason.

Also the executor sync handlers run in, `herald.subhandler`, and the memos
of an operator's objects.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import copy
import functools
import inspect
import logging
import os
from typing import Any, Callable, Optional

from herald import errors as herald_errors
from herald._daemons import Daemons, InterimChanges
from herald._logging import ObjectLogger, logger
from herald._wire import (cut, decode_kwargs, decode_memo, duration, encode_changes,
                          encode_events, encode_result, failed_outcome, is_activity, log_key,
                          object_key, reason)
from herald.registry import Handler, Registry
from herald.structs import Patch
from herald.v1 import handler_pb2 as pb
from herald.v1 import resource_pb2

_SUCCESS = pb.OUTCOME_STATUS_SUCCESS
_ERRORS = (pb.OUTCOME_STATUS_TEMPORARY_ERROR, pb.OUTCOME_STATUS_PERMANENT_ERROR,
           pb.OUTCOME_STATUS_UNEXPECTED_ERROR)

# --- the executor ------------------------------------------------------------

_executor: Optional[concurrent.futures.ThreadPoolExecutor] = None


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


async def run_in_executor(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Runs CPU-bound or blocking work in the handlers' pool and waits for it."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(get_executor(), functools.partial(fn, *args, **kwargs))


async def call(fn: Callable[..., Any], kwargs: dict) -> Any:
    """Calls a handler or callback: a coroutine function on the event loop,
    any other in the executor, in a copy of this task's context (for
    herald.subhandler)."""
    if inspect.iscoroutinefunction(fn):
        return await fn(**kwargs)
    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    return await loop.run_in_executor(get_executor(), functools.partial(ctx.run, fn, **kwargs))


# --- sub-handlers ------------------------------------------------------------

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


async def call_handler(fn: Callable[..., Any], kwargs: dict) -> tuple[Any, list]:
    """Calls a handler; returns its result and the sub-handlers it declared."""
    declared: list = []
    token = _subhandlers.set(declared)
    try:
        return await call(fn, kwargs), declared
    finally:
        _subhandlers.reset(token)


# --- outcomes ----------------------------------------------------------------


def set_error(target, e: Exception, log: ObjectLogger, kind: str, handler_id: str) -> None:
    """Sets the status, message and delay of `target` (an Outcome or a
    SubhandlerOutcome) from the error a handler raised, and logs it; call it
    in the `except` block (an unexpected error is logged with its traceback).
    `kind` ("handler", "sub-handler") and `handler_id` name it in the log."""
    if isinstance(e, herald_errors.TemporaryError):
        target.status = pb.OUTCOME_STATUS_TEMPORARY_ERROR
        target.message = cut(str(e))
        if e.delay is not None:
            target.delay.CopyFrom(duration(e.delay))
        log.error("%s %s failed temporarily: %s", kind, handler_id, e)
    elif isinstance(e, herald_errors.PermanentError):
        target.status = pb.OUTCOME_STATUS_PERMANENT_ERROR
        target.message = cut(str(e))
        log.error("%s %s failed permanently: %s", kind, handler_id, e)
    else:
        target.status = pb.OUTCOME_STATUS_UNEXPECTED_ERROR
        target.message = cut(reason(e))
        log.exception("%s %s failed with an unexpected error", kind, handler_id)


async def matches(h: Handler, kwargs: dict) -> bool:
    """The filters the sidecar left to the client, in Kopf's order: callable
    label filters, callable annotation filters (each called with the value,
    None when absent, and the handler's kwargs), then `when`."""
    for pattern, content in ((h.labels, kwargs["labels"]),
                             (h.annotations, kwargs["annotations"])):
        for key, want in pattern.items():
            if callable(want) and not await call(
                    functools.partial(want, content.get(key)), kwargs):
                return False
    return h.when is None or bool(await call(h.when, kwargs))


async def run_subhandlers(d: pb.Delivery, h: Handler, declared: list, kwargs: dict,
                          outcome: pb.Outcome, log: ObjectLogger) -> None:
    """Runs the declared sub-handlers not done yet, each adding its own
    outcome to `outcome.subhandlers`."""
    done = set(d.done_subhandler_ids)
    for sub_id, fn in declared:
        child_id = f"{h.id}/{sub_id}"
        if child_id in done:
            continue
        child = outcome.subhandlers.add(id=child_id)
        try:
            await call(fn, kwargs)
            child.status = _SUCCESS
            log.logger.info("[%s] sub-handler %s succeeded", log.key, child_id)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - any error is an outcome
            set_error(child, e, log, "sub-handler", child_id)


def encode_outcome(outcome: pb.Outcome, h: Handler, result: Any, patch: dict,
                   memo_before: Any, memo: Any, log: ObjectLogger) -> list:
    """Adds the result, the changes and the Events to `outcome`, piece by
    piece: what cannot be encoded makes a success an unexpected error naming
    it (an error keeps its status, the reason added); the rest still goes
    out, as with any failed handler. Returns the failures."""
    failures: list = []
    index = h.cause == "CAUSE_INDEX"
    if outcome.status == _SUCCESS and (index or result is not None):
        text = encode_result(result, index, failures)
        if text:
            outcome.result_json = text
    encode_changes(outcome.changes, patch, memo_before, memo, failures)
    if failures:
        log.error("handler %s failed: %s", h.id, "; ".join(failures))
        if outcome.status in _ERRORS:
            failures.insert(0, outcome.message)
        else:
            outcome.status = pb.OUTCOME_STATUS_UNEXPECTED_ERROR
            outcome.ClearField("result_json")
        outcome.message = cut("; ".join(failures))
    encode_events(outcome.changes, log.events)
    return failures


# --- memos -------------------------------------------------------------------


class Memos:
    """The in-process memos of an operator: `memo`, the operator's (what
    activities get), and `local`, one per object, made on first sight."""

    def __init__(self, memo: Any, factory: Optional[Callable[[], Any]] = None):
        self.memo = memo
        self.factory = factory
        self.local: dict[str, Any] = {}

    def for_delivery(self, d: pb.Delivery) -> Any:
        """The memo a delivery's handler gets: the operator's for activities,
        else its object's."""
        if is_activity(d):
            return self.memo
        key = object_key(d)
        memo = self.local.get(key)
        if memo is None:
            memo = self.local[key] = self._new()
        return memo

    def _new(self) -> Any:
        # A shallow copy of the operator memo, as in Kopf; into an instance
        # of the custom class when there is one.
        if self.factory is None:
            return copy.copy(self.memo)
        memo = self.factory()
        items = self.memo.items() if isinstance(self.memo, dict) else vars(self.memo).items()
        for k, v in items:
            if isinstance(memo, dict):
                memo[k] = v
            else:
                setattr(memo, k, v)
        return memo

    def forget(self, d: pb.Delivery) -> None:
        """Drops the memo of the delivery's object (it is gone)."""
        self.local.pop(object_key(d), None)


# --- one delivery ------------------------------------------------------------


class Execution:
    """Executes an operator's deliveries: the handler from `registry`, the
    memos from `memos`, daemons' stop flags from `daemons`; what handlers log
    at `posting_level` and above is posted as Events."""

    def __init__(self, registry: Registry, memos: Memos, daemons: Daemons,
                 posting_level: Optional[int]):
        self.registry = registry
        self.memos = memos
        self.daemons = daemons
        self.posting_level = posting_level

    async def handle(self, d: pb.Delivery, outbox: asyncio.Queue) -> None:
        """Answers one delivery on `outbox` with exactly one outcome, whatever
        fails on the way (a daemon of a process that stops is the one
        exception: it restarts elsewhere)."""
        answered = False

        async def answer(outcome: pb.Outcome) -> None:
            nonlocal answered
            answered = True
            await outbox.put(pb.ConnectRequest(outcome=outcome))

        try:
            await self._handle(d, answer, outbox)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a delivery is always answered
            logger.exception("delivery %s of %s failed in the client", d.delivery_id, d.handler_id)
            if not answered:
                await outbox.put(failed_outcome(
                    d.delivery_id, f"the client failed to handle the delivery: {reason(e)}"))

    async def _handle(self, d: pb.Delivery, answer: Callable, outbox: asyncio.Queue) -> None:
        h = self.registry.get(d.handler_id)
        log = ObjectLogger(logging.getLogger(f"herald.handlers.{d.handler_id}"), log_key(d),
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
            shared = decode_memo(d)
            shared_before = copy.deepcopy(shared)
            kwargs = decode_kwargs(d)
            kwargs.update(patch=patch, memo=self.memos.for_delivery(d), shared_memo=shared,
                          logger=log, executor=run_in_executor)
            if daemon:
                kwargs["stopped"] = self.daemons.flag(d.delivery_id)
        except Exception as e:  # noqa: BLE001 - too deep, or not JSON: an outcome
            outcome.status = pb.OUTCOME_STATUS_UNEXPECTED_ERROR
            outcome.message = cut(f"the delivery cannot be decoded: {reason(e)}")
            log.error("handler %s not called: %s", h.id, outcome.message)
            encode_events(outcome.changes, log.events)
            await answer(outcome)
            return
        result = None
        interim = None
        if daemon:
            interim = InterimChanges(d.delivery_id, patch, shared, shared_before, log, outbox)
            interim.start()
        try:
            if not await matches(h, kwargs):
                outcome.status = pb.OUTCOME_STATUS_SKIPPED
            else:
                result, declared = await call_handler(h.fn, kwargs)
                outcome.status = _SUCCESS
                if declared:
                    await run_subhandlers(d, h, declared, kwargs, outcome, log)
        except asyncio.CancelledError:
            if not (daemon and kwargs["stopped"].by_sidecar):
                if interim:
                    interim.cancel()
                raise  # Stopping: no outcome; the sidecar redelivers.
            # A daemon cancelled at the sidecar's request: report it ended.
            outcome.status = _SUCCESS
            outcome.message = "cancelled after a stop request"
        except Exception as e:  # noqa: BLE001 - any error is an outcome
            set_error(outcome, e, log, "handler", h.id)
        if interim:
            interim.cancel()
            shared_before = interim.memo_sent
            if self.daemons.ends_with_process(kwargs["stopped"]):
                return  # This process stops: the daemon restarts on another.
        failures = encode_outcome(outcome, h, result, patch, shared_before, shared, log)
        if (not failures and outcome.status == _SUCCESS and not daemon
                and all(c.status == _SUCCESS for c in outcome.subhandlers)):
            # Logged, not posted: an Event per success would double the
            # API writes of every handled change.
            log.logger.info("[%s] handler %s succeeded", log.key, h.id)
        await answer(outcome)
        if ((d.cause == resource_pb2.CAUSE_DELETE and outcome.status == _SUCCESS)
                or (d.cause == resource_pb2.CAUSE_EVENT and d.event_type == "DELETED")):
            self.memos.forget(d)  # The object's local memo goes with the object.
        if h.after is not None:
            try:
                await call(h.after, dict(kwargs, outcome=pb.OutcomeStatus.Name(outcome.status),
                                         result=result))
            except Exception:  # noqa: BLE001 - a callback never breaks the stream
                log.exception("the after-callback of %s failed", h.id)
