"""The filters the sidecar leaves to the client, with Kopf's semantics, in
Kopf's order: callable label filters, callable annotation filters, field
values (for handlers the sidecar does not filter by field: events, timers,
daemons, indices), callable `value=`, `old=` and `new=`, then `when`.

Callables get the value (None when absent) and the handler's keyword
arguments; sync ones run in the executor, async ones on the loop.
"""

from __future__ import annotations

import functools
from typing import Any, Awaitable, Callable

from herald._wire import FIELD_CAUSES
from herald.registry import Handler
from herald.structs import ABSENT, PRESENT

_MISSING = object()

Call = Callable[[Callable[..., Any], dict], Awaitable[Any]]


def resolve(body: Any, path: str) -> Any:
    """The value at a dotted `path` of `body`, or _MISSING."""
    value = body
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _plain(value: Any) -> Any:
    return None if value is _MISSING else value


def _value_matches(want: Any, values: list) -> bool:
    """A non-callable `value=` against the field's values (any of them)."""
    if want is None or want is PRESENT:
        return any(v is not _MISSING for v in values)
    if want is ABSENT:
        return any(v is _MISSING for v in values)
    return any(v == want for v in values)


async def _any_call(fn: Callable[..., Any], values: list, kwargs: dict, call: Call) -> bool:
    for v in values:
        if await call(functools.partial(fn, _plain(v)), kwargs):
            return True
    return False


def _set(h: Handler, name: str) -> bool:
    return name not in h._unset and getattr(h, name) is not None


async def matches(h: Handler, kwargs: dict, call: Call) -> bool:
    """Whether the handler matches the delivery by the client's filters."""
    for pattern, content in ((h.labels, kwargs["labels"]),
                             (h.annotations, kwargs["annotations"])):
        for key, want in pattern.items():
            if callable(want) and not await call(
                    functools.partial(want, content.get(key)), kwargs):
                return False
    if h.field:
        if h.cause in FIELD_CAUSES:
            # The sidecar narrowed old and new to the field; it checked
            # presence and plain values, the callables are left.
            values = [kwargs.get("new"), kwargs.get("old")]
            if _set(h, "value") and callable(h.value) and \
                    not await _any_call(h.value, values, kwargs, call):
                return False
            for name, value in (("old", kwargs.get("old")), ("new", kwargs.get("new"))):
                want = getattr(h, name)
                if _set(h, name) and callable(want) and \
                        not await call(functools.partial(want, value), kwargs):
                    return False
        else:
            if not h.cause and isinstance(kwargs.get("new"), dict):
                # A sub-handler during an update: the field in old and new.
                old = resolve(kwargs.get("old"), h.field)
                new = resolve(kwargs.get("new"), h.field)
                for name, value in (("old", old), ("new", new)):
                    want = getattr(h, name)
                    if want is None:
                        continue
                    if callable(want):
                        if not await call(functools.partial(want, _plain(value)), kwargs):
                            return False
                    elif not _value_matches(want, [value]):
                        return False
                values = [new, old]
            else:
                values = [resolve(kwargs["body"], h.field)]
            want = h.value if _set(h, "value") else None
            if callable(want):
                if not await _any_call(want, values, kwargs, call):
                    return False
            elif not _value_matches(want, values):
                return False
    return h.when is None or bool(await call(h.when, kwargs))
