"""Kopf's lifecycles: which of a change's pending handlers run next. The
Herald sidecar decides that itself (one handler at a time), so these exist
for modules that name them; setting a default other than `asap` is warned,
once, as having no effect. The functions behave as Kopf's on any sequence.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Optional, Sequence

from herald._logging import warn_once

Handlers = Sequence[Any]
LifeCycleFn = Callable[..., Handlers]


def all_at_once(handlers: Handlers, **_: Any) -> Handlers:
    return handlers


def one_by_one(handlers: Handlers, **_: Any) -> Handlers:
    return handlers[:1]


def randomized(handlers: Handlers, **_: Any) -> Handlers:
    return [random.choice(handlers)] if handlers else []


def shuffled(handlers: Handlers, **_: Any) -> Handlers:
    return random.sample(list(handlers), k=len(handlers)) if handlers else []


def asap(handlers: Handlers, *, state: Any = None, **_: Any) -> Handlers:
    """One handler: the one with the fewest retries (`state[id].retries`)."""
    def retries(handler: Any) -> int:
        record = state.get(handler.id) if state is not None else None
        return (getattr(record, "retries", None) or 0) if record is not None else 0
    return sorted(handlers, key=retries)[:1]


_default: LifeCycleFn = asap


def get_default_lifecycle() -> LifeCycleFn:
    return _default


def set_default_lifecycle(lifecycle: Optional[LifeCycleFn]) -> None:
    global _default
    _default = lifecycle if lifecycle is not None else asap
    if _default is not asap:
        warn_once("set_default_lifecycle",
                  "herald.set_default_lifecycle(%s): the Herald sidecar orders handlers "
                  "itself; this has no effect", getattr(_default, "__name__", _default))
