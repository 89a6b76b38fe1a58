"""Decorators that register handlers, with Kopf's names, selectors and
options:

    @herald.on.create('kopfexamples')
    def create_fn(spec, name, logger, **_):
        return {'message': f'hello {name}'}

Every decorator takes Kopf's keyword arguments. The resource is named as in
Kopf (herald.selectors); ids are Kopf's (the function's qualified name, plus
"/<field>" for a field); one function may carry several decorators
(herald.registry). `param=` is passed to the handler as `param`.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Optional

from herald._logging import warn_once
from herald._execution import register, subhandler  # noqa: F401 - Kopf's kopf.on names
from herald.registry import Handler, Registry, get_default_registry
from herald.selectors import resource_name

_UNSET = object()
_log = logging.getLogger("herald")
def _resource(args: tuple, decorator: str = "handler", **selector: Any) -> str:
    """The sidecar's name of a selector: ("kopfexamples",),
    ("kopf.dev", "kopfexamples"), ("kopf.dev/v1", "kopfexamples"),
    ("kopf.dev", "v1", "kopfexamples"), or group=/version=/plural=..."""
    return resource_name(decorator, args, **selector)


def _callable_id(fn: Callable[..., Any]) -> str:
    """Kopf's default handler id, so that progress stored by Kopf matches."""
    if isinstance(fn, functools.partial):
        return _callable_id(fn.func)
    if hasattr(fn, "__wrapped__"):
        return _callable_id(fn.__wrapped__)
    if getattr(fn, "__name__", None) == "<lambda>":
        return f"lambda:{fn.__code__.co_filename}:{fn.__code__.co_firstlineno}"
    return str(getattr(fn, "__qualname__", getattr(fn, "__name__", repr(fn))))


_SELECTOR = ("group", "version", "kind", "plural", "singular", "shortcut", "category")


def _register(cause: str, args: tuple, *, id: Optional[str] = None,
              registry: Optional[Registry] = None, field: Any = None,
              labels: Optional[dict] = None, annotations: Optional[dict] = None,
              **options: Any) -> Callable:
    selector = {k: options.pop(k) for k in _SELECTOR if k in options}
    resource = _resource(args, cause[len("CAUSE_"):].lower(), **selector)
    if isinstance(field, (list, tuple)):
        field = ".".join(field)

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        real_id = id or _callable_id(fn)
        if field:
            real_id = f"{real_id}/{field}"
        unset = tuple(k for k in ("value", "old", "new") if options.get(k, _UNSET) is _UNSET)
        opts = {k: (None if v is _UNSET else v) for k, v in options.items()}
        (registry or get_default_registry()).append(Handler(
            fn=fn, id=real_id, resource=resource, cause=cause, field=field or "",
            labels=labels or {}, annotations=annotations or {}, _unset=unset, **opts))
        return fn

    return decorator


def _activity(cause: str, id: Optional[str], registry: Optional[Registry],
              **options: Any) -> Callable:
    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        (registry or get_default_registry()).append(Handler(
            fn=fn, id=id or _callable_id(fn), resource="", cause=cause, **options))
        return fn
    return decorator


# --- resource-changing handlers ----------------------------------------------

def create(*resource: Any, group: Optional[str] = None, version: Optional[str] = None,
           kind: Optional[str] = None, plural: Optional[str] = None,
           singular: Optional[str] = None, shortcut: Optional[str] = None,
           category: Optional[str] = None, id: Optional[str] = None, param: Any = None,
           errors: Any = None, timeout: Optional[float] = None, retries: Optional[int] = None,
           backoff: Optional[float] = None, labels: Optional[dict] = None,
           annotations: Optional[dict] = None, when: Optional[Callable[..., bool]] = None,
           field: Any = None, value: Any = _UNSET, after: Optional[Callable[..., Any]] = None,
           registry: Optional[Registry] = None) -> Callable:
    """Called once when an object is created (or first seen without a diff-base)."""
    return _register("CAUSE_CREATE", resource, **{k: v for k, v in locals().items()
                                                   if k != "resource"})


def update(*resource: Any, group: Optional[str] = None, version: Optional[str] = None,
           kind: Optional[str] = None, plural: Optional[str] = None,
           singular: Optional[str] = None, shortcut: Optional[str] = None,
           category: Optional[str] = None, id: Optional[str] = None, param: Any = None,
           errors: Any = None, timeout: Optional[float] = None, retries: Optional[int] = None,
           backoff: Optional[float] = None, labels: Optional[dict] = None,
           annotations: Optional[dict] = None, when: Optional[Callable[..., bool]] = None,
           field: Any = None, value: Any = _UNSET, old: Any = _UNSET, new: Any = _UNSET,
           after: Optional[Callable[..., Any]] = None,
           registry: Optional[Registry] = None) -> Callable:
    """Called when the object's essence changes; gets old, new and diff."""
    return _register("CAUSE_UPDATE", resource, **{k: v for k, v in locals().items()
                                                   if k != "resource"})


def delete(*resource: Any, group: Optional[str] = None, version: Optional[str] = None,
           kind: Optional[str] = None, plural: Optional[str] = None,
           singular: Optional[str] = None, shortcut: Optional[str] = None,
           category: Optional[str] = None, id: Optional[str] = None, param: Any = None,
           errors: Any = None, timeout: Optional[float] = None, retries: Optional[int] = None,
           backoff: Optional[float] = None, optional: bool = False,
           labels: Optional[dict] = None, annotations: Optional[dict] = None,
           when: Optional[Callable[..., bool]] = None, field: Any = None, value: Any = _UNSET,
           after: Optional[Callable[..., Any]] = None,
           registry: Optional[Registry] = None) -> Callable:
    """Called when the object is being deleted; holds a finalizer unless optional."""
    return _register("CAUSE_DELETE", resource, **{k: v for k, v in locals().items()
                                                   if k != "resource"})


def resume(*resource: Any, group: Optional[str] = None, version: Optional[str] = None,
           kind: Optional[str] = None, plural: Optional[str] = None,
           singular: Optional[str] = None, shortcut: Optional[str] = None,
           category: Optional[str] = None, id: Optional[str] = None, param: Any = None,
           errors: Any = None, timeout: Optional[float] = None, retries: Optional[int] = None,
           backoff: Optional[float] = None, deleted: Optional[bool] = None,
           labels: Optional[dict] = None, annotations: Optional[dict] = None,
           when: Optional[Callable[..., bool]] = None, field: Any = None, value: Any = _UNSET,
           after: Optional[Callable[..., Any]] = None,
           registry: Optional[Registry] = None) -> Callable:
    """Called for objects that existed before the sidecar started. With
    ``deleted=True`` Kopf also calls it for objects being deleted; the
    sidecar does not yet (a warning says so, once)."""
    if deleted:
        warn_once("resume-deleted", "herald.on.resume(deleted=True): the Herald sidecar does "
                   "not call resume handlers for objects being deleted; delete handlers are")
    return _register("CAUSE_RESUME", resource, **{k: v for k, v in locals().items()
                                                   if k not in ("resource", "deleted")})


def field(*resource: Any, group: Optional[str] = None, version: Optional[str] = None,
          kind: Optional[str] = None, plural: Optional[str] = None,
          singular: Optional[str] = None, shortcut: Optional[str] = None,
          category: Optional[str] = None, id: Optional[str] = None, param: Any = None,
          errors: Any = None, timeout: Optional[float] = None, retries: Optional[int] = None,
          backoff: Optional[float] = None, labels: Optional[dict] = None,
          annotations: Optional[dict] = None, when: Optional[Callable[..., bool]] = None,
          field: Any, value: Any = _UNSET, old: Any = _UNSET, new: Any = _UNSET,
          after: Optional[Callable[..., Any]] = None,
          registry: Optional[Registry] = None) -> Callable:
    """Called when one field changes (also when it appears at creation)."""
    return _register("CAUSE_FIELD", resource, **{k: v for k, v in locals().items()
                                                  if k != "resource"})


# --- watching, timers, daemons, indices --------------------------------------

def event(*resource: Any, group: Optional[str] = None, version: Optional[str] = None,
          kind: Optional[str] = None, plural: Optional[str] = None,
          singular: Optional[str] = None, shortcut: Optional[str] = None,
          category: Optional[str] = None, id: Optional[str] = None, param: Any = None,
          labels: Optional[dict] = None, annotations: Optional[dict] = None,
          when: Optional[Callable[..., bool]] = None, field: Any = None, value: Any = _UNSET,
          after: Optional[Callable[..., Any]] = None,
          registry: Optional[Registry] = None) -> Callable:
    """Called for every raw watch event; nothing is stored, errors are not retried."""
    return _register("CAUSE_EVENT", resource, **{k: v for k, v in locals().items()
                                                  if k != "resource"})


def timer(*resource: Any, group: Optional[str] = None, version: Optional[str] = None,
          kind: Optional[str] = None, plural: Optional[str] = None,
          singular: Optional[str] = None, shortcut: Optional[str] = None,
          category: Optional[str] = None, id: Optional[str] = None, param: Any = None,
          errors: Any = None, timeout: Optional[float] = None, retries: Optional[int] = None,
          backoff: Optional[float] = None, interval: Optional[float] = None,
          initial_delay: float = 0, sharp: bool = False, idle: float = 0,
          labels: Optional[dict] = None, annotations: Optional[dict] = None,
          when: Optional[Callable[..., bool]] = None, field: Any = None, value: Any = _UNSET,
          after: Optional[Callable[..., Any]] = None,
          registry: Optional[Registry] = None) -> Callable:
    """Called every `interval` seconds while the object exists, never
    overlapping itself; the sidecar schedules it. `initial_delay` before the
    first call, `idle`: only after the object has not changed for that long,
    `sharp`: aligned to a grid of `interval`. The object holds a finalizer
    while a timer matches, so that the timer stops before it goes."""
    if interval is None:
        raise TypeError("herald.on.timer needs interval= (seconds between calls)")
    opts = {k: v for k, v in locals().items()
            if k not in ("resource", "interval", "initial_delay", "sharp", "idle")}
    return _register("CAUSE_TIMER", resource, **opts,
                     timer={"interval": interval, "initial_delay": initial_delay,
                            "idle": idle, "sharp": sharp})


def daemon(*resource: Any, group: Optional[str] = None, version: Optional[str] = None,
           kind: Optional[str] = None, plural: Optional[str] = None,
           singular: Optional[str] = None, shortcut: Optional[str] = None,
           category: Optional[str] = None, id: Optional[str] = None, param: Any = None,
           errors: Any = None, timeout: Optional[float] = None, retries: Optional[int] = None,
           backoff: Optional[float] = None, initial_delay: float = 0,
           cancellation_backoff: Optional[float] = None,
           cancellation_timeout: Optional[float] = None,
           cancellation_polling: Optional[float] = None,
           labels: Optional[dict] = None, annotations: Optional[dict] = None,
           when: Optional[Callable[..., bool]] = None, field: Any = None, value: Any = _UNSET,
           registry: Optional[Registry] = None) -> Callable:
    """A long-running call per object, as long as the object exists and
    matches. It gets ``stopped`` (true once it must stop: the object is being
    deleted, stops matching, or the sidecar shuts down); ``stopped.wait(t)``
    sleeps up to t seconds or until then (awaitable in async daemons).
    ``cancellation_backoff`` seconds after the stop request an async daemon
    is cancelled; ``cancellation_timeout`` seconds later the sidecar releases
    the object anyway. Changes to ``patch`` (and Events logged) are sent while
    it runs, every second. Returning ends it for good; an error restarts it
    after the error's delay. It runs on another process if this one dies.
    ``cancellation_polling`` is accepted and has no effect: the sidecar
    tells the process when a daemon must stop, nothing polls."""
    opts = {k: v for k, v in locals().items()
            if k not in ("resource", "initial_delay", "cancellation_backoff",
                         "cancellation_timeout", "cancellation_polling")}
    return _register("CAUSE_DAEMON", resource, **opts,
                     daemon={"initial_delay": initial_delay,
                             "cancellation_backoff": cancellation_backoff,
                             "cancellation_timeout": cancellation_timeout})


def index(*resource: Any, group: Optional[str] = None, version: Optional[str] = None,
          kind: Optional[str] = None, plural: Optional[str] = None,
          singular: Optional[str] = None, shortcut: Optional[str] = None,
          category: Optional[str] = None, id: Optional[str] = None, param: Any = None,
          errors: Any = None, timeout: Optional[float] = None, retries: Optional[int] = None,
          backoff: Optional[float] = None, labels: Optional[dict] = None,
          annotations: Optional[dict] = None, when: Optional[Callable[..., bool]] = None,
          field: Any = None, value: Any = _UNSET,
          registry: Optional[Registry] = None) -> Callable:
    """An index: called for each object of the resource; returns ``{key:
    value}`` (or a bare value, kept under the key None). The sidecar keeps
    the index; every other handler of the registry gets it as a keyword
    argument named after the index's id: a dict of key to the list of values
    from all objects. Handlers wait until every index is filled from the
    initial listing."""
    return _register("CAUSE_INDEX", resource, **{k: v for k, v in locals().items()
                                                  if k != "resource"})


# --- activities --------------------------------------------------------------

def startup(*, id: Optional[str] = None, param: Any = None, errors: Any = None,
            timeout: Optional[float] = None, retries: Optional[int] = None,
            backoff: Optional[float] = None, registry: Optional[Registry] = None) -> Callable:
    """Called once when the operator starts, before its resources are
    watched. ``memo`` is the operator memo itself (objects' memos start as a
    copy of it); ``shared_memo`` changes go to the sidecar's operator memo;
    ``settings`` is the operator's OperatorSettings. A permanent failure (or
    exhausted retries) stops the sidecar."""
    return _activity("CAUSE_STARTUP", id, registry, param=param, errors=errors,
                     timeout=timeout, retries=retries, backoff=backoff)


def cleanup(*, id: Optional[str] = None, param: Any = None, errors: Any = None,
            timeout: Optional[float] = None, retries: Optional[int] = None,
            backoff: Optional[float] = None, registry: Optional[Registry] = None) -> Callable:
    """Called once when the sidecar stops, within its stop-wait time."""
    return _activity("CAUSE_CLEANUP", id, registry, param=param, errors=errors,
                     timeout=timeout, retries=retries, backoff=backoff)


def probe(*, id: Optional[str] = None, param: Any = None, errors: Any = None,
          timeout: Optional[float] = None, retries: Optional[int] = None,
          backoff: Optional[float] = None, registry: Optional[Registry] = None) -> Callable:
    """A liveness probe: the sidecar's ``/healthz`` returns every probe's
    result under its id (results are reused for 10 s); an error fails it."""
    return _activity("CAUSE_PROBE", id, registry, param=param, errors=errors,
                     timeout=timeout, retries=retries, backoff=backoff)


def login(*, id: Optional[str] = None, param: Any = None, errors: Any = None,
          timeout: Optional[float] = None, retries: Optional[int] = None,
          backoff: Optional[float] = None, registry: Optional[Registry] = None) -> Callable:
    """Kopf's login handler. The Herald sidecar authenticates to the cluster
    itself (its --kubeconfig, or the pod's service account), so login
    handlers are accepted and never called; a warning says so, once."""
    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        warn_once("login", f"herald.on.login: {_callable_id(fn)} is not called: the Herald "
                   f"sidecar authenticates to the cluster itself")
        return fn
    return decorator


def declare_index(*resource: str, id: str, label: Optional[str] = None,
                  field: Any = None, registry: Optional[Registry] = None) -> None:
    """An index the sidecar computes itself, without calling any handler:
    objects by the value of a label or of a field. Values are
    ``{"namespace": ..., "name": ...}``; handlers get it like other indices,
    as a keyword argument named `id`."""
    if (label is None) == (field is None):
        raise TypeError("declare_index needs exactly one of label= or field=")
    if isinstance(field, (list, tuple)):
        field = ".".join(field)
    (registry or get_default_registry()).append(Handler(
        fn=lambda **_: None, id=id, resource=_resource(resource, "declare_index"),
        cause="CAUSE_INDEX",
        index_by={"label": label} if label is not None else {"field": field}))
