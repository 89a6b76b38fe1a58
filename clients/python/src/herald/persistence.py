"""Kopf's persistence classes: where progress and diff-bases are stored.

The Herald sidecar stores them itself, in annotations under its
``--annotation_prefix`` (and the finalizer named by ``--finalizer``); set
``--annotation_prefix=kopf.zalando.org`` to share Kopf's. These classes take
Kopf's arguments and keep them, so that code configuring them runs; assigning
one to ``settings.persistence`` (or changing its finalizer) is warned, once,
naming the sidecar's flag to set instead.
"""

from __future__ import annotations

from typing import Any, Collection, Iterable, Optional, TypedDict


class ProgressRecord(TypedDict, total=False):
    started: Optional[str]
    stopped: Optional[str]
    delayed: Optional[str]
    purpose: Optional[str]
    retries: Optional[int]
    success: Optional[bool]
    failure: Optional[bool]
    message: Optional[str]
    subrefs: Optional[Collection[str]]


class DiffBaseStorage:
    def __init__(self, ignored_fields: Optional[Iterable[Any]] = None) -> None:
        self.ignored_fields = list(ignored_fields or [])

    def describe(self) -> str:
        return type(self).__name__


class AnnotationsDiffBaseStorage(DiffBaseStorage):
    def __init__(self, *, prefix: str = "kopf.zalando.org",
                 key: str = "last-handled-configuration",
                 ignored_fields: Optional[Iterable[Any]] = None, v1: bool = True) -> None:
        super().__init__(ignored_fields)
        self.prefix, self.key, self.v1 = prefix, key, v1

    def describe(self) -> str:
        return f"annotations with the prefix {self.prefix!r}"


class StatusDiffBaseStorage(DiffBaseStorage):
    def __init__(self, *, name: str = "kopf",
                 field: Any = "status.{name}.last-handled-configuration",
                 ignored_fields: Optional[Iterable[Any]] = None) -> None:
        super().__init__(ignored_fields)
        self.name, self.field = name, field

    def describe(self) -> str:
        return "the status (not supported: the sidecar keeps annotations)"


class MultiDiffBaseStorage(DiffBaseStorage):
    def __init__(self, storages: Collection[DiffBaseStorage]) -> None:
        super().__init__()
        self.storages = list(storages)

    def describe(self) -> str:
        return " and ".join(s.describe() for s in self.storages)


class ProgressStorage:
    def describe(self) -> str:
        return type(self).__name__


class AnnotationsProgressStorage(ProgressStorage):
    def __init__(self, *, prefix: str = "kopf.zalando.org", verbose: bool = False,
                 touch_key: str = "touch-dummy", v1: bool = True) -> None:
        self.prefix, self.verbose, self.touch_key, self.v1 = prefix, verbose, touch_key, v1

    def describe(self) -> str:
        return f"annotations with the prefix {self.prefix!r}"


class StatusProgressStorage(ProgressStorage):
    def __init__(self, *, name: str = "kopf", field: Any = "status.{name}.progress",
                 touch_field: Any = "status.{name}.dummy") -> None:
        self.name, self.field, self.touch_field = name, field, touch_field

    def describe(self) -> str:
        return "the status (not supported: the sidecar keeps annotations)"


class MultiProgressStorage(ProgressStorage):
    def __init__(self, storages: Collection[ProgressStorage]) -> None:
        self.storages = list(storages)

    def describe(self) -> str:
        return " and ".join(s.describe() for s in self.storages)


class SmartProgressStorage(MultiProgressStorage):
    def __init__(self, *, name: str = "kopf", field: Any = "status.{name}.progress",
                 touch_key: str = "touch-dummy", touch_field: Any = "status.{name}.dummy",
                 prefix: str = "kopf.zalando.org", v1: bool = True,
                 verbose: bool = False) -> None:
        super().__init__([
            AnnotationsProgressStorage(prefix=prefix, verbose=verbose, touch_key=touch_key,
                                       v1=v1),
            StatusProgressStorage(name=name, field=field, touch_field=touch_field)])
        self.prefix = prefix

    def describe(self) -> str:
        return f"annotations with the prefix {self.prefix!r} (and the status, not supported)"
