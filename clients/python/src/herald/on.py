"""Decorators that register handlers, with Kopf's names and options:

    @herald.on.create('kopfexamples')
    def create_fn(spec, name, logger, **_):
        return {'message': f'hello {name}'}
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

from herald.registry import Handler, Registry, get_default_registry

_UNSET = object()


def _resource(args: tuple) -> str:
    """("kopfexamples",), ("kopf.dev", "v1", "kopfexamples"), ("kopf.dev", "kopfexamples")."""
    if len(args) == 1:
        return args[0]
    if len(args) == 2:
        return f"{args[1]}.{args[0]}"
    if len(args) == 3:
        group, version, plural = args
        return f"{plural}.{version}.{group}" if group else f"{plural}.{version}"
    raise TypeError("name the resource as 'plural', 'Kind.group', "
                    "('group', 'plural') or ('group', 'version', 'plural')")


def _callable_id(fn: Callable[..., Any]) -> str:
    """Kopf's default handler id, so that progress stored by Kopf matches."""
    if isinstance(fn, functools.partial):
        return _callable_id(fn.func)
    if hasattr(fn, "__wrapped__"):
        return _callable_id(fn.__wrapped__)
    if getattr(fn, "__name__", None) == "<lambda>":
        return f"lambda:{fn.__code__.co_filename}:{fn.__code__.co_firstlineno}"
    return str(getattr(fn, "__qualname__", getattr(fn, "__name__", repr(fn))))


def _register(cause: str, args: tuple, *, id: Optional[str] = None,
              registry: Optional[Registry] = None, field: Any = None,
              **options: Any) -> Callable:
    resource = _resource(args)
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
            _unset=unset, **opts))
        return fn

    return decorator


def create(*resource: str, id: Optional[str] = None, labels: Optional[dict] = None,
           annotations: Optional[dict] = None, field: Any = None, value: Any = _UNSET,
           when: Optional[Callable[..., bool]] = None, retries: Optional[int] = None,
           timeout: Optional[float] = None, backoff: Optional[float] = None,
           errors: Any = None, after: Optional[Callable[..., Any]] = None,
           registry: Optional[Registry] = None) -> Callable:
    """Called once when an object is created (or first seen without a diff-base)."""
    return _register("CAUSE_CREATE", resource, id=id, registry=registry, field=field,
                     labels=labels or {}, annotations=annotations or {}, value=value,
                     when=when, retries=retries, timeout=timeout, backoff=backoff,
                     errors=errors, after=after)


def update(*resource: str, id: Optional[str] = None, labels: Optional[dict] = None,
           annotations: Optional[dict] = None, field: Any = None, value: Any = _UNSET,
           old: Any = _UNSET, new: Any = _UNSET,
           when: Optional[Callable[..., bool]] = None, retries: Optional[int] = None,
           timeout: Optional[float] = None, backoff: Optional[float] = None,
           errors: Any = None, after: Optional[Callable[..., Any]] = None,
           registry: Optional[Registry] = None) -> Callable:
    """Called when the object's essence changes; gets old, new and diff."""
    return _register("CAUSE_UPDATE", resource, id=id, registry=registry, field=field,
                     labels=labels or {}, annotations=annotations or {}, value=value,
                     old=old, new=new, when=when, retries=retries, timeout=timeout,
                     backoff=backoff, errors=errors, after=after)


def delete(*resource: str, id: Optional[str] = None, labels: Optional[dict] = None,
           annotations: Optional[dict] = None, optional: bool = False,
           when: Optional[Callable[..., bool]] = None, retries: Optional[int] = None,
           timeout: Optional[float] = None, backoff: Optional[float] = None,
           errors: Any = None, after: Optional[Callable[..., Any]] = None,
           registry: Optional[Registry] = None) -> Callable:
    """Called when the object is being deleted; holds a finalizer unless optional."""
    return _register("CAUSE_DELETE", resource, id=id, registry=registry,
                     labels=labels or {}, annotations=annotations or {}, optional=optional,
                     when=when, retries=retries, timeout=timeout, backoff=backoff,
                     errors=errors, after=after)


def resume(*resource: str, id: Optional[str] = None, labels: Optional[dict] = None,
           annotations: Optional[dict] = None, when: Optional[Callable[..., bool]] = None,
           retries: Optional[int] = None, timeout: Optional[float] = None,
           backoff: Optional[float] = None, errors: Any = None,
           after: Optional[Callable[..., Any]] = None,
           registry: Optional[Registry] = None) -> Callable:
    """Called for objects that existed before the sidecar started."""
    return _register("CAUSE_RESUME", resource, id=id, registry=registry,
                     labels=labels or {}, annotations=annotations or {}, when=when,
                     retries=retries, timeout=timeout, backoff=backoff, errors=errors,
                     after=after)


def field(*resource: str, field: Any, id: Optional[str] = None,
          labels: Optional[dict] = None, annotations: Optional[dict] = None,
          value: Any = _UNSET, old: Any = _UNSET, new: Any = _UNSET,
          when: Optional[Callable[..., bool]] = None, retries: Optional[int] = None,
          timeout: Optional[float] = None, backoff: Optional[float] = None,
          errors: Any = None, after: Optional[Callable[..., Any]] = None,
          registry: Optional[Registry] = None) -> Callable:
    """Called when one field changes (also when it appears at creation)."""
    return _register("CAUSE_FIELD", resource, id=id, registry=registry, field=field,
                     labels=labels or {}, annotations=annotations or {}, value=value,
                     old=old, new=new, when=when, retries=retries, timeout=timeout,
                     backoff=backoff, errors=errors, after=after)


def event(*resource: str, id: Optional[str] = None, labels: Optional[dict] = None,
          annotations: Optional[dict] = None, when: Optional[Callable[..., bool]] = None,
          after: Optional[Callable[..., Any]] = None,
          registry: Optional[Registry] = None) -> Callable:
    """Called for every raw watch event; nothing is stored, errors are not retried."""
    return _register("CAUSE_EVENT", resource, id=id, registry=registry,
                     labels=labels or {}, annotations=annotations or {}, when=when,
                     after=after)


def timer(*resource: str, interval: float, initial_delay: float = 0, idle: float = 0,
          sharp: bool = False, id: Optional[str] = None, labels: Optional[dict] = None,
          annotations: Optional[dict] = None, when: Optional[Callable[..., bool]] = None,
          backoff: Optional[float] = None, errors: Any = None,
          after: Optional[Callable[..., Any]] = None,
          registry: Optional[Registry] = None) -> Callable:
    """Called every `interval` seconds while the object exists, never
    overlapping itself; the sidecar schedules it. `initial_delay` before the
    first call, `idle`: only after the object has not changed for that long,
    `sharp`: aligned to a grid of `interval`. The object holds a finalizer
    while a timer matches, so that the timer stops before it goes."""
    return _register("CAUSE_TIMER", resource, id=id, registry=registry,
                     labels=labels or {}, annotations=annotations or {}, when=when,
                     backoff=backoff, errors=errors, after=after,
                     timer={"interval": interval, "initial_delay": initial_delay,
                            "idle": idle, "sharp": sharp})


def index(*resource: str, id: Optional[str] = None, labels: Optional[dict] = None,
          annotations: Optional[dict] = None, when: Optional[Callable[..., bool]] = None,
          registry: Optional[Registry] = None) -> Callable:
    """An index: called for each object of the resource; returns ``{key:
    value}`` (or a bare value, kept under the key None). The sidecar keeps
    the index; every other handler of the registry gets it as a keyword
    argument named after the index's id: a dict of key to the list of values
    from all objects. Handlers wait until every index is filled from the
    initial listing."""
    return _register("CAUSE_INDEX", resource, id=id, registry=registry,
                     labels=labels or {}, annotations=annotations or {}, when=when)


def startup(*, id: Optional[str] = None, retries: Optional[int] = None,
            timeout: Optional[float] = None, backoff: Optional[float] = None,
            errors: Any = None, registry: Optional[Registry] = None) -> Callable:
    """Called once when the operator starts, before its resources are
    watched. ``memo`` is the operator memo itself (objects' memos start as a
    copy of it); ``shared_memo`` changes go to the sidecar's operator memo. A
    permanent failure (or exhausted retries) stops the sidecar."""
    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        (registry or get_default_registry()).append(Handler(
            fn=fn, id=id or _callable_id(fn), resource="", cause="CAUSE_STARTUP",
            retries=retries, timeout=timeout, backoff=backoff, errors=errors))
        return fn
    return decorator


def cleanup(*, id: Optional[str] = None, registry: Optional[Registry] = None) -> Callable:
    """Called once when the sidecar stops, within its stop-wait time."""
    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        (registry or get_default_registry()).append(Handler(
            fn=fn, id=id or _callable_id(fn), resource="", cause="CAUSE_CLEANUP"))
        return fn
    return decorator


def probe(*, id: Optional[str] = None, registry: Optional[Registry] = None) -> Callable:
    """A liveness probe: the sidecar's ``/healthz`` returns every probe's
    result under its id (results are reused for 10 s); an error fails it."""
    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        (registry or get_default_registry()).append(Handler(
            fn=fn, id=id or _callable_id(fn), resource="", cause="CAUSE_PROBE"))
        return fn
    return decorator


def daemon(*resource: str, id: Optional[str] = None, labels: Optional[dict] = None,
           annotations: Optional[dict] = None, when: Optional[Callable[..., bool]] = None,
           initial_delay: float = 0, cancellation_backoff: Optional[float] = None,
           cancellation_timeout: Optional[float] = None, backoff: Optional[float] = None,
           errors: Any = None, registry: Optional[Registry] = None) -> Callable:
    """A long-running call per object, as long as the object exists and
    matches. It gets ``stopped`` (true once it must stop: the object is being
    deleted, stops matching, or the sidecar shuts down); ``stopped.wait(t)``
    sleeps up to t seconds or until then (awaitable in async daemons).
    ``cancellation_backoff`` seconds after the stop request an async daemon
    is cancelled; ``cancellation_timeout`` seconds later the sidecar releases
    the object anyway. Changes to ``patch`` (and Events logged) are sent while
    it runs, every second. Returning ends it for good; an error restarts it
    after the error's delay. It runs on another process if this one dies."""
    return _register("CAUSE_DAEMON", resource, id=id, registry=registry,
                     labels=labels or {}, annotations=annotations or {}, when=when,
                     backoff=backoff, errors=errors,
                     daemon={"initial_delay": initial_delay,
                             "cancellation_backoff": cancellation_backoff,
                             "cancellation_timeout": cancellation_timeout})


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
        fn=lambda **_: None, id=id, resource=_resource(resource), cause="CAUSE_INDEX",
        index_by={"label": label} if label is not None else {"field": field}))
