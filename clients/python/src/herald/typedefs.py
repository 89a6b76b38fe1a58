"""Kopf's type names, so that handlers annotated for Kopf import and run:

    def create_fn(spec: herald.Spec, meta: herald.Meta, diff: herald.Diff,
                  logger: herald.Logger, **_): ...

`Body`, `Spec`, `Meta` and `Status` are dicts (what handlers get) with Kopf's
attribute access (``body.spec``, ``meta.name``, ``meta.labels``); `Diff` is a
tuple of `DiffItem`s, which compare equal to plain tuples; `Reason` and
`DiffOperation` are string enums, equal to their strings. The rest are
typing aliases with Kopf's shapes.
"""

from __future__ import annotations

import enum
import logging
from typing import Any, Callable, Collection, Literal, Mapping, NamedTuple, NewType, Optional, \
    TypedDict, Union

# --- plain typing aliases ----------------------------------------------------

Labels = Mapping[str, str]
Annotations = Mapping[str, str]
Logger = Union[logging.Logger, logging.LoggerAdapter]
FieldPath = tuple  # A field as its keys: ("spec", "size").
FieldSpec = Union[None, str, FieldPath, list]  # "spec.size", ("spec", "size"), ["spec", "size"]
HandlerId = NewType("HandlerId", str)
RawEventType = Literal[None, "ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
PatchFn = Callable[[Mapping[str, Any]], None]
# Indices: key to a collection of values (herald gives a dict of lists).
Index = Mapping
Store = Collection


class RawBody(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: Mapping[str, Any]
    spec: Mapping[str, Any]
    status: Mapping[str, Any]


class BodyEssence(TypedDict, total=False):
    metadata: Mapping[str, Any]
    spec: Mapping[str, Any]


class RawEvent(TypedDict):
    type: RawEventType
    object: RawBody


class ObjectReference(TypedDict, total=False):
    apiVersion: str
    kind: str
    namespace: Optional[str]
    name: str
    uid: str


class OwnerReference(TypedDict, total=False):
    controller: bool
    blockOwnerDeletion: bool
    apiVersion: str
    kind: str
    name: str
    uid: str


# --- enums -------------------------------------------------------------------


class Reason(str, enum.Enum):
    """Why a resource-changing handler is called (the `reason` argument)."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    RESUME = "resume"
    NOOP = "noop"
    FREE = "free"
    GONE = "gone"

    def __str__(self) -> str:
        return str(self.value)


class DiffOperation(str, enum.Enum):
    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"

    def __str__(self) -> str:
        return str(self.value)


class DaemonStoppingReason(enum.Flag):
    """Why a daemon is asked to stop, with Kopf's names."""

    NONE = 0
    DONE = enum.auto()
    FILTERS_MISMATCH = enum.auto()
    RESOURCE_DELETED = enum.auto()
    OPERATOR_PAUSING = enum.auto()
    OPERATOR_EXITING = enum.auto()
    DAEMON_SIGNALLED = enum.auto()
    DAEMON_CANCELLED = enum.auto()
    DAEMON_ABANDONED = enum.auto()


# --- diffs -------------------------------------------------------------------


class DiffItem(NamedTuple):
    """One change: (operation, field path, old value, new value)."""

    operation: DiffOperation
    field: FieldPath
    old: Any
    new: Any


class Diff(tuple):
    """A diff: a tuple of DiffItems (equal to a tuple of plain tuples)."""

    def __new__(cls, items: Any = ()) -> "Diff":
        return super().__new__(cls, (i if isinstance(i, DiffItem) else
                                     DiffItem(DiffOperation(i[0]), tuple(i[1]), i[2], i[3])
                                     for i in items))

    def __repr__(self) -> str:
        return f"Diff({list(self)!r})"


# --- bodies ------------------------------------------------------------------


class _Part(dict):
    def __init__(self, src: Any = None, /, **kwargs: Any):
        super().__init__(src or {}, **kwargs)


class Spec(_Part):
    """An object's spec: a dict."""


class Status(_Part):
    """An object's status: a dict."""


class Meta(_Part):
    """An object's metadata: a dict with Kopf's attributes."""

    @property
    def labels(self) -> Mapping[str, str]:
        return self.get("labels") or {}

    @property
    def annotations(self) -> Mapping[str, str]:
        return self.get("annotations") or {}

    @property
    def uid(self) -> Optional[str]:
        return self.get("uid")

    @property
    def name(self) -> Optional[str]:
        return self.get("name")

    @property
    def namespace(self) -> Optional[str]:
        return self.get("namespace")

    @property
    def creation_timestamp(self) -> Optional[str]:
        return self.get("creationTimestamp")

    @property
    def deletion_timestamp(self) -> Optional[str]:
        return self.get("deletionTimestamp")


class Body(dict):
    """An object's body: a dict whose ``metadata``, ``spec`` and ``status``
    are also attributes, as `Meta`, `Spec` and `Status` (the same dicts)."""

    def __init__(self, src: Any = None, /, **kwargs: Any):
        super().__init__(src or {}, **kwargs)
        for key, kind in (("metadata", Meta), ("spec", Spec), ("status", Status)):
            if isinstance(self.get(key), dict) and not isinstance(self[key], kind):
                self[key] = kind(self[key])

    def _part(self, key: str, kind: type) -> Any:
        value = self.get(key)
        return value if isinstance(value, kind) else kind(value or {})

    @property
    def metadata(self) -> Meta:
        return self._part("metadata", Meta)

    meta = metadata

    @property
    def spec(self) -> Spec:
        return self._part("spec", Spec)

    @property
    def status(self) -> Status:
        return self._part("status", Status)
