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
