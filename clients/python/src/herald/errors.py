"""Errors handlers raise to tell Herald what to do next, as in Kopf."""

from __future__ import annotations


class HandlerError(Exception):
    """Base of the errors below."""


class TemporaryError(HandlerError):
    """Retry the handler after `delay` seconds."""

    def __init__(self, message: str = "", delay: float | None = 60):
        super().__init__(message)
        self.delay = delay


class PermanentError(HandlerError):
    """Fail the handler for this change; a later change runs it again."""


class HandlerTimeoutError(PermanentError):
    """A handler ran past its `timeout=` (Kopf's name). The sidecar decides
    timeouts and records them in the handler's progress; handlers may raise
    it themselves to fail permanently."""


class HandlerRetriesError(PermanentError):
    """A handler used up its `retries=` (Kopf's name); as HandlerTimeoutError."""


class LoginError(Exception):
    """Kopf's error of login handlers. The sidecar authenticates to the
    cluster, so herald never calls login handlers and never raises it."""


class RegistrationRejected(Exception):
    """The sidecar rejected handlers of this operator: their specs are invalid
    (a rejection is final). `rejections` lists (handler id, reason). Raised
    by ``operator()`` and ``Operator.run()`` unless ``allow_rejected=True``."""

    def __init__(self, rejections: list[tuple[str, str]]):
        self.rejections = list(rejections)
        listed = "; ".join(f"{hid!r}: {reason}" for hid, reason in self.rejections)
        super().__init__(f"the Herald sidecar rejected {len(self.rejections)} handler(s): {listed} "
                         f"(fix them, or serve the rest with allow_rejected=True, "
                         f"herald run --allow-rejected)")
