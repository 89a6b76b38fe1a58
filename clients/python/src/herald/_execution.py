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
from herald import _filters
from herald._daemons import Daemons, InterimChanges
from herald._logging import ObjectLogger, logger
from herald._stacked import StackedCalls
from herald._wire import (cut, decode_kwargs, decode_memo, duration, encode_changes,
                          encode_events, encode_result, failed_outcome, is_activity, log_context,
                          log_key, object_key, reason)
from herald.hierarchies import owner_var
from herald.posting import target_var
from herald.registry import Handler, Registry
from herald.settings import OperatorSettings
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

# The sub-handlers a running handler declares, in order: (id, function, its
# options as a Handler: filters, param, backoff, errors).
_subhandlers: contextvars.ContextVar[Optional[list]] = contextvars.ContextVar(
    "herald_subhandlers", default=None)


def subhandler(*, id: Optional[str] = None, param: Any = None, errors: Any = None,
               timeout: Optional[float] = None, retries: Optional[int] = None,
               backoff: Optional[float] = None, labels: Optional[dict] = None,
               annotations: Optional[dict] = None, when: Optional[Callable[..., bool]] = None,
               field: Any = None, value: Any = None, old: Any = None,
               new: Any = None) -> Callable:
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

    Kopf's options: filters (`labels`, `annotations`, `when`, `field` with
    `value`, `old`, `new`) are checked in the client, and a sub-handler
    that does not match is not run; `param` is passed to it; `backoff` and
    `errors` decide its errors' delay and meaning. `timeout` and `retries`
    are accepted; the parent's limits apply to its sub-handlers.
    """
    if isinstance(field, (list, tuple)):
        field = ".".join(field)

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        declared = _subhandlers.get()
        if declared is None:
            raise RuntimeError("herald.subhandler is for use inside a running handler")
        from herald.on import _callable_id
        sub_id = id or _callable_id(fn)
        options = Handler(fn=fn, id=sub_id, resource="", cause="",
                          labels=labels or {}, annotations=annotations or {}, when=when,
                          field=field or "", value=value, old=old, new=new, param=param,
                          errors=errors, backoff=backoff, timeout=timeout, retries=retries)
        declared.append((sub_id, fn, options))
        return fn
    return decorator


def register(fn: Callable[..., Any], *, id: Optional[str] = None, param: Any = None,
             errors: Any = None, timeout: Optional[float] = None, retries: Optional[int] = None,
             backoff: Optional[float] = None, labels: Optional[dict] = None,
             annotations: Optional[dict] = None,
             when: Optional[Callable[..., bool]] = None) -> Callable[..., Any]:
    """Kopf's ``register(fn, ...)``: declares `fn` as a sub-handler of the
    running handler, as ``@subhandler(...)`` does."""
    return subhandler(id=id, param=param, errors=errors, timeout=timeout, retries=retries,
                      backoff=backoff, labels=labels, annotations=annotations, when=when)(fn)


async def call_handler(fn: Callable[..., Any], kwargs: dict) -> tuple[Any, list]:
    """Calls a handler; returns its result and the sub-handlers it declared.
    Its object is the default owner of herald.adopt() and alike, and what
    herald.event() posts about."""
    declared: list = []
    token = _subhandlers.set(declared)
    owner = owner_var.set(kwargs.get("body") or None)
    posting = target_var.set((kwargs.get("uid"), kwargs.get("logger"), kwargs.get("settings")))
    try:
        return await call(fn, kwargs), declared
    finally:
        target_var.reset(posting)
        owner_var.reset(owner)
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
    """The filters the sidecar left to the client, in Kopf's order (see
    herald._filters): callable label and annotation filters, field values,
    callable value filters, then `when`."""
    return await _filters.matches(h, kwargs, call)


def apply_default_delay(outcome: pb.Outcome, h: Handler, delay: Optional[float]) -> None:
    """Gives errors that name no delay the operator's default (Kopf's
    ``settings.execution.default_backoff``) when the handler has no
    backoff of its own; None leaves them to the sidecar's default."""
    if delay is None or h.backoff is not None:
        return
    for target in (outcome, *outcome.subhandlers):
        if target.status in _ERRORS and not target.HasField("delay"):
            target.delay.CopyFrom(duration(delay))


async def run_subhandlers(d: pb.Delivery, h: Handler, declared: list, kwargs: dict,
                          outcome: pb.Outcome, log: ObjectLogger) -> None:
    """Runs the declared sub-handlers not done yet, each adding its own
    outcome to `outcome.subhandlers`."""
    done = set(d.done_subhandler_ids)
    for sub_id, fn, options in declared:
        child_id = f"{h.id}/{sub_id}"
        if child_id in done:
            continue
        child_kwargs = dict(kwargs, param=options.param)
        if not await matches(options, child_kwargs):
            continue  # As in Kopf: a sub-handler that does not match is not run.
        child = outcome.subhandlers.add(id=child_id)
        try:
            await call(fn, child_kwargs)
            child.status = _SUCCESS
            log.logger.info("[%s] sub-handler %s succeeded", log.key, child_id,
                            extra=log.record_extra())
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - any error is an outcome
            set_error(child, e, log, "sub-handler", child_id)
            _sub_errors_mode(child, options)


def _sub_errors_mode(child: pb.SubhandlerOutcome, options: Handler) -> None:
    """A sub-handler's own `errors=` and `backoff=` for an error it raised."""
    mode = getattr(options.errors, "value", options.errors)
    if child.status == pb.OUTCOME_STATUS_UNEXPECTED_ERROR:
        if mode == "ERRORS_MODE_PERMANENT":
            child.status = pb.OUTCOME_STATUS_PERMANENT_ERROR
        elif mode == "ERRORS_MODE_IGNORED":
            child.status = _SUCCESS  # Kopf: logged, and the sub-handler is done.
    if (options.backoff is not None and child.status in _ERRORS
            and not child.HasField("delay")):
        child.delay.CopyFrom(duration(options.backoff))


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
                 posting_level: Optional[int], settings: Optional[OperatorSettings] = None):
        self.registry = registry
        self.memos = memos
        self.daemons = daemons
        self.posting_level = posting_level
        self.settings = settings if settings is not None else OperatorSettings()
        self.stacked = StackedCalls()

    def effective_posting_level(self) -> Optional[int]:
        """The operator's posting level, unless its settings changed Kopf's
        default posting (``settings.posting.enabled`` or ``.level``)."""
        posting = self.settings.posting
        if posting.enabled and posting.level == logging.INFO:
            return self.posting_level
        return self.settings.posting_level()

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
                           self.effective_posting_level(), context=log_context(d))
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
                          logger=log, executor=run_in_executor, param=h.param,
                          settings=self.settings)
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
        repeated = False
        if daemon:
            interim = InterimChanges(d.delivery_id, patch, shared, shared_before, log, outbox)
            interim.start()
        try:
            if not await matches(h, kwargs):
                outcome.status = pb.OUTCOME_STATUS_SKIPPED
            elif self.stacked.called(self.registry, h, d):
                outcome.status = _SUCCESS  # Called once for this change already.
                repeated = True
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
        if h.kopf_id and result is not None and outcome.status == _SUCCESS:
            # Where Kopf puts it: status.<Kopf's id>, not the wire id's.
            patch.status[h.kopf_id] = result
            result = None
        apply_default_delay(outcome, h, self.settings.retry_delay())
        failures = encode_outcome(outcome, h, result, patch, shared_before, shared, log)
        if outcome.status == _SUCCESS and not outcome.subhandlers:
            self.stacked.succeeded(self.registry, h, d)
        if (not failures and outcome.status == _SUCCESS and not daemon and not repeated
                and all(c.status == _SUCCESS for c in outcome.subhandlers)):
            # Logged, not posted: an Event per success would double the
            # API writes of every handled change.
            log.logger.info("[%s] handler %s succeeded", log.key, h.id,
                            extra=log.record_extra())
        await answer(outcome)
        if ((d.cause == resource_pb2.CAUSE_DELETE and outcome.status == _SUCCESS)
                or (d.cause == resource_pb2.CAUSE_EVENT and d.event_type == "DELETED")):
            self.memos.forget(d)  # The object's local memo goes with the object.
            self.stacked.forget(d)
        if h.after is not None:
            try:
                await call(h.after, dict(kwargs, outcome=pb.OutcomeStatus.Name(outcome.status),
                                         result=result))
            except Exception:  # noqa: BLE001 - a callback never breaks the stream
                log.exception("the after-callback of %s failed", h.id)
