"""Kopf's posting API: Kubernetes Events from inside handlers.

    @herald.on.create('kopfexamples')
    def create_fn(body, **_):
        herald.info(body, reason='Created', message='all set')

Events about the handler's own object are sent with its outcome (a daemon's
with its next interim changes) and posted by the sidecar, as the `logger`'s
are; `settings.posting` decides, as in Kopf (``exception`` needs ERROR,
``warn`` WARNING, ``info`` INFO). Kopf's "Error" type is posted as
"Warning", the only other type Kubernetes has. The sidecar cannot yet post
Events about other objects (its EventRecord names no object): those, and
calls outside a handler, are dropped with a warning, once.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from typing import Any, Iterable, Optional, Union

from herald._logging import warn_once
from herald.hierarchies import _walk

# (uid of the handler's object, its logger collecting Events, the settings).
target_var: contextvars.ContextVar[Optional[tuple]] = contextvars.ContextVar(
    "herald_posting", default=None)

_log = logging.getLogger("herald")
def _post(objs: Any, etype: str, reason: str, message: str, level: Optional[int]) -> None:
    target = target_var.get()
    if target is None:
        warn_once("outside", "herald.event() outside a handler is not posted: Events are "
                   "sent with a handler's outcome")
        return
    uid, object_logger, settings = target
    if settings is not None and (not settings.posting.enabled or (
            level is not None and settings.posting.level > level)):
        return
    for obj in _walk(objs):
        if uid and obj.get("metadata", {}).get("uid") == uid:
            object_logger.events.append(
                ("WARNING" if etype in ("Warning", "Error") else "NORMAL", reason, message))
        else:
            warn_once("other", "herald.event() about another object than the handler's is "
                       "not posted: the Herald sidecar posts Events about the handled object only")


def event(objs: Any, *, type: str, reason: str, message: str = "",
          backoffs: Union[float, Iterable[float], None] = None) -> None:
    """An Event of `type` ("Normal", "Warning") about the objects."""
    _post(objs, type, reason, message, None)  # Whatever the level, as Kopf's.


def info(objs: Any, *, reason: str, message: str = "",
         backoffs: Union[float, Iterable[float], None] = None) -> None:
    """A Normal Event, when the posting level is INFO or lower."""
    _post(objs, "Normal", reason, message, logging.INFO)


def warn(objs: Any, *, reason: str, message: str = "",
         backoffs: Union[float, Iterable[float], None] = None) -> None:
    """A Warning Event, when the posting level is WARNING or lower."""
    _post(objs, "Warning", reason, message, logging.WARNING)


def exception(objs: Any, *, reason: str = "", message: str = "",
              exc: Optional[BaseException] = None,
              backoffs: Union[float, Iterable[float], None] = None) -> None:
    """An Event about an exception (the one being handled by default): its
    type's name is the reason, its text ends the message."""
    if exc is None:
        exc = sys.exc_info()[1]
    reason = reason or type(exc).__name__
    message = f"{message} {exc}" if message and exc else f"{exc}" if exc else message
    _post(objs, "Error", reason, message, logging.ERROR)
