"""Functions with several decorators (``@on.resume`` over ``@on.create``),
called once per object state, as Kopf calls them once when several of their
handlers match one change. See herald.registry for their ids.
"""

from __future__ import annotations

import collections
from typing import Optional

from herald._wire import object_key
from herald.registry import Handler, Registry
from herald.v1 import handler_pb2 as pb
from herald.v1 import resource_pb2


class StackedCalls:
    """Calls a function with several decorators (``@on.resume`` over
    ``@on.create``) once per object state, as Kopf does when several of them
    match one change: after one of its handlers succeeded on an object's
    resourceVersion, the others with the same Kopf id answer success on that
    version without calling it again. Kopf tells handlers apart by function
    and id: one function under two fields ("fn/spec.a", "fn/spec.b") is two
    handlers, called once each."""

    _CHANGING = (resource_pb2.CAUSE_CREATE, resource_pb2.CAUSE_UPDATE,
                 resource_pb2.CAUSE_DELETE, resource_pb2.CAUSE_RESUME, resource_pb2.CAUSE_FIELD)

    def __init__(self) -> None:
        # (object, id(fn), Kopf's id) -> resourceVersion
        self._done: dict[tuple[str, int, str], str] = {}
        self._count = -1
        self._fns: set[int] = set()

    def _key(self, registry: Registry, h: Handler, d: pb.Delivery) -> Optional[tuple]:
        handlers = registry.handlers
        if len(handlers) != self._count:
            counts = collections.Counter(id(x.fn) for x in handlers)
            self._fns = {fn for fn, n in counts.items() if n > 1}
            self._count = len(handlers)
        if d.cause not in self._CHANGING or id(h.fn) not in self._fns:
            return None
        return object_key(d), id(h.fn), h.result_key

    @staticmethod
    def _version(d: pb.Delivery) -> str:
        return d.object.resource_version or str(hash(d.body_json))

    def called(self, registry: Registry, h: Handler, d: pb.Delivery) -> bool:
        key = self._key(registry, h, d)
        return key is not None and self._done.get(key) == self._version(d)

    def succeeded(self, registry: Registry, h: Handler, d: pb.Delivery) -> None:
        key = self._key(registry, h, d)
        if key is not None:
            self._done[key] = self._version(d)

    def forget(self, d: pb.Delivery) -> None:
        okey = object_key(d)
        for key in [k for k in self._done if k[0] == okey]:
            del self._done[key]
