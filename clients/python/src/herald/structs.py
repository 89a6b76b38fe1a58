"""Small containers handlers work with: memos, patches, filter markers."""

from __future__ import annotations

import enum
from typing import Any, Iterable, NamedTuple


class _Marker:
    def __init__(self, name: str):
        self._name = name

    def __repr__(self) -> str:
        return f"herald.{self._name}"


PRESENT = _Marker("PRESENT")
"""A label or annotation filter: the key is there, with any value."""
ABSENT = _Marker("ABSENT")
"""A label or annotation filter: the key is not there."""


class ErrorsMode(enum.Enum):
    """What an unexpected error in a handler means (Kopf's ``errors=``)."""

    TEMPORARY = "ERRORS_MODE_TEMPORARY"
    PERMANENT = "ERRORS_MODE_PERMANENT"
    IGNORED = "ERRORS_MODE_IGNORED"


class Memo(dict):
    """A dict whose keys are also attributes: ``memo.counter`` is ``memo['counter']``.

    In-process only: it may hold anything (locks, queues, tasks). Each object
    gets its own on first sight, a shallow copy of the operator's memo.
    """

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __copy__(self) -> "Memo":
        return type(self)(self)


class Patch(dict):
    """The changes a handler asks for, as a JSON merge patch.

    ``patch.spec``, ``patch.status``, ``patch.metadata`` (and its ``labels``
    and ``annotations``) create their sub-dicts on first use. Setting a value
    to None removes the field.

    Kopf's constructor: ``Patch(src, body=..., fns=...)``; `fns` (functions
    that edit the body, sent by Kopf as JSON patches) are refused when the
    patch is sent: the sidecar applies merge patches only.
    """

    def __init__(self, src: Any = None, /, body: Any = None, fns: Iterable[Any] = (),
                 **kwargs: Any):
        super().__init__(src or {}, **kwargs)
        self.__dict__["body"] = body
        self.__dict__["fns"] = list(fns)

    def __copy__(self) -> "Patch":
        return type(self)(self, body=self.body, fns=self.fns)

    def _section(self, key: str) -> "Patch":
        if key not in self or not isinstance(self[key], dict):
            self[key] = Patch()
        elif not isinstance(self[key], Patch):
            self[key] = Patch(self[key])
        return self[key]

    @property
    def spec(self) -> "Patch":
        return self._section("spec")

    @property
    def status(self) -> "Patch":
        return self._section("status")

    @property
    def metadata(self) -> "Patch":
        return self._section("metadata")

    meta = metadata

    @property
    def labels(self) -> "Patch":
        return self._section("labels")

    @property
    def annotations(self) -> "Patch":
        return self._section("annotations")


class DaemonStopped:
    """A daemon's stop flag: false while it may run, true once it must stop.

    ``wait(timeout)`` sleeps until the flag is set or the timeout passes and
    returns the flag; called from a coroutine it is awaitable
    (``await stopped.wait(10)``), from a thread it blocks.
    """

    def __init__(self) -> None:
        import threading
        self._event = threading.Event()
        self._waiters: list = []
        self.reason: str = ""
        # True when the sidecar asked for the stop (not this process ending).
        self.by_sidecar = False

    def set(self, reason: str = "") -> None:
        self.reason = self.reason or reason
        self._event.set()
        for loop, fut in self._waiters:
            loop.call_soon_threadsafe(lambda f=fut: f.done() or f.set_result(True))
        self._waiters.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    __bool__ = is_set

    def wait(self, timeout: float | None = None):
        import asyncio
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._event.wait(timeout)
        return self._async_wait(loop, timeout)

    async def _async_wait(self, loop, timeout: float | None) -> bool:
        import asyncio
        if self.is_set():
            return True
        fut = loop.create_future()
        self._waiters.append((loop, fut))
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            pass
        return self.is_set()

    def __repr__(self) -> str:
        return f"DaemonStopped({self.is_set()})"


class Resource(NamedTuple):
    """The resource of the object a handler is called for. Kopf's other
    fields (singular, shortcuts, ...) are empty: deliveries do not carry
    them."""

    group: str
    version: str
    plural: str
    kind: str = ""
    namespaced: bool = False
    singular: str = ""
    shortcuts: frozenset = frozenset()
    categories: frozenset = frozenset()
    subresources: frozenset = frozenset()
    preferred: bool = True
    verbs: frozenset = frozenset()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def merge_patch_between(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    out: dict = {}
    for k in old:
        if k not in new:
            out[k] = None
    for k, v in new.items():
        if k not in old:
            out[k] = v
        elif old[k] != v:
            out[k] = merge_patch_between(old[k], v)
    return out


from herald.hierarchies import adopt  # noqa: E402,F401 - herald.structs.adopt, as before
