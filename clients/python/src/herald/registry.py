"""Handler registries: what the decorators fill and operators serve.

Each operator serves one registry; several operators with separate
registries can run in one process. Decorators use the default registry
unless given ``registry=``.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Callable, Optional


@dataclasses.dataclass
class Handler:
    """One registered handler and its options."""

    fn: Callable[..., Any]
    id: str
    resource: str
    cause: str  # A herald.v1 Cause name, e.g. "CAUSE_CREATE".
    labels: dict = dataclasses.field(default_factory=dict)
    annotations: dict = dataclasses.field(default_factory=dict)
    field: str = ""
    value: Any = None
    old: Any = None
    new: Any = None
    when: Optional[Callable[..., bool]] = None
    retries: Optional[int] = None
    timeout: Optional[float] = None
    backoff: Optional[float] = None
    errors: Any = None
    optional: bool = False
    after: Optional[Callable[..., Any]] = None
    timer: Optional[dict] = None
    daemon: Optional[dict] = None
    index_by: Optional[dict] = None  # Declarative index: {"label": k} or {"field": p}.
    _unset: tuple = ()


class Registry:
    """Handlers by id, in registration order. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: dict[str, Handler] = {}

    def append(self, handler: Handler) -> None:
        with self._lock:
            if handler.id in self._handlers:
                raise ValueError(f"handler id {handler.id!r} is already registered; "
                                 f"give one of them id=")
            self._handlers[handler.id] = handler

    def get(self, handler_id: str) -> Optional[Handler]:
        with self._lock:
            return self._handlers.get(handler_id)

    @property
    def handlers(self) -> list[Handler]:
        with self._lock:
            return list(self._handlers.values())


_default = Registry()


def get_default_registry() -> Registry:
    return _default


def set_default_registry(registry: Registry) -> None:
    global _default
    _default = registry
