"""Handler registries: what the decorators fill and operators serve.

Each operator serves one registry; several operators with separate
registries can run in one process. Decorators use the default registry
unless given ``registry=``.

One function may carry several decorators of different causes, as in Kopf
(``@on.resume`` over ``@on.create``). Kopf gives them one id (the function's
name) and calls the function once when both match one change; the sidecar
keys handlers by id, so the later ones are registered as "<id>/<cause>"
(`Handler.kopf_id` keeps Kopf's id: their results still go to
``status.<Kopf's id>``), and the client calls the function once per object
state (herald._execution).
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
    param: Any = None  # Kopf's `param=`, passed to the handler as `param`.
    # Kopf's id when it differs from `id` (a function with several decorators).
    kopf_id: str = ""

    @property
    def result_key(self) -> str:
        """Where Kopf stores the handler's result: ``status.<result_key>``."""
        return self.kopf_id or self.id


class Registry:
    """Handlers by id, in registration order. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: dict[str, Handler] = {}

    def append(self, handler: Handler) -> None:
        """Registers `handler`. An id taken by another function, or by the
        same function for the same cause, is an error; the same function
        under another cause is registered as "<id>/<cause>"."""
        with self._lock:
            taken = self._handlers.get(handler.id)
            if taken is not None and taken.fn is handler.fn and taken.cause != handler.cause:
                wire_id = f"{handler.id}/{handler.cause[len('CAUSE_'):].lower()}"
                if wire_id not in self._handlers:
                    handler.kopf_id, handler.id = handler.id, wire_id
                    taken = None
            if taken is not None:
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
