"""The `logger` handlers get: one per delivery, about its object."""

from __future__ import annotations

import logging
from typing import Any, Optional

# The client's own logger; handlers' loggers are under herald.handlers.<id>.
logger = logging.getLogger("herald")

# The attribute of log records about an object or a handler: a dict of
# "namespace", "name", "resource" (as the sidecar names it,
# "kopfexamples.v1.kopf.dev") and "id" (the handler's), those known, and
# "prefix", the "[namespace/name] " the message starts with.
# herald.configure(log_format=LogFormat.JSON) writes them as keys of their own.
CONTEXT = "herald_context"

# Keys of the warnings given once per process.
_warned: set = set()


def warn_once(key: str, message: str, *args: Any) -> None:
    """Logs a warning on the "herald" logger the first time `key` is seen."""
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, *args)


class ObjectLogger(logging.LoggerAdapter):
    """Prefixes messages with the object's namespace/name and collects the
    records at `posting_level` and above (None: none) as Kubernetes Events
    to post about the object: (NORMAL or WARNING, reason, message).

    Kopf's constructor, ``ObjectLogger(body=..., settings=...)``, makes one
    about `body` on the "kopf.objects" logger, posting at the settings'
    posting level; the Events it collects are posted only for the handler's
    own logger (the `logger` argument)."""

    def __init__(self, base: Optional[logging.Logger] = None, key: str = "",
                 posting_level: Optional[int] = logging.INFO, *, body: Any = None,
                 settings: Any = None, context: Optional[dict] = None):
        context = dict(context or {})
        if body is not None:
            meta = body.get("metadata", {})
            key = key or "/".join(p for p in (meta.get("namespace"), meta.get("name")) if p)
            for field in ("namespace", "name"):
                if meta.get(field):
                    context.setdefault(field, meta[field])
        if settings is not None:
            posting_level = settings.posting_level()
        super().__init__(base or logging.getLogger("kopf.objects"), {})
        self.key = key
        self.posting_level = posting_level
        self.context = context
        self.events: list[tuple[str, str, str]] = []

    def record_extra(self, **overrides: str) -> dict:
        """The `extra=` of a record about this logger's object (and handler),
        for lines logged on `self.logger` directly; `overrides` replace
        context fields (e.g. a sub-handler's ``id``)."""
        return {CONTEXT: {**self.context, **overrides, "prefix": f"[{self.key}] "}}

    def log(self, level, msg, *args, **kwargs):  # noqa: D401 - logging API
        if self.posting_level is not None and level >= self.posting_level:
            text = msg % args if args else str(msg)
            self.events.append(("WARNING" if level >= logging.WARNING else "NORMAL",
                                logging.getLevelName(level).capitalize() or "Logging", text))
        super().log(level, msg, *args, **kwargs)

    def process(self, msg, kwargs):
        kwargs["extra"] = {**(kwargs.get("extra") or {}), **self.record_extra()}
        return f"[{self.key}] {msg}", kwargs

    def take_events(self) -> list[tuple[str, str, str]]:
        """The Events collected so far, which are then no longer held."""
        events, self.events = self.events, []
        return events
