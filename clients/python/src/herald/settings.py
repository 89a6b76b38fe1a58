"""Kopf's `OperatorSettings` and `configure()`.

An operator has one OperatorSettings (``herald.operator(settings=...)``, or
a fresh one); startup handlers get it as ``settings`` and may change it, as
in Kopf. What herald reads from it:

- ``posting.enabled`` and ``posting.level``: which log records of handlers'
  loggers become Kubernetes Events;
- ``execution.default_backoff``: the retry delay of an error that names none
  (unexpected errors, ``TemporaryError(delay=None)``) in handlers without
  ``backoff=``; Kopf's default is 60 s, as the sidecar's.

The other sections have every field Kopf has, with Kopf's defaults, so that
code setting them runs; they mean nothing here, because the sidecar does
that work with its own flags: ``watching``, ``queueing``, ``networking``,
``scanning`` (the sidecar's watches and API client), ``persistence`` (its
``--prefix``/finalizer flags), ``peering`` (one sidecar per operator),
``admission`` (no webhooks), ``background``, ``process``, and the executor
of ``execution`` (herald's pool: ``HERALD_EXECUTOR_WORKERS``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import enum
import json
import logging
import re
from typing import Any, Iterable, Optional, Union

from herald._logging import CONTEXT, warn_once
from herald import persistence

# Kopf's default retry delay of errors that name none, in seconds.
DEFAULT_BACKOFF = 60.0


@dataclasses.dataclass
class ProcessSettings:
    ultimate_exiting_timeout: Optional[float] = 10 * 60


@dataclasses.dataclass
class PostingSettings:
    enabled: bool = True
    loggers: bool = False
    level: int = logging.INFO
    default_backoffs: Union[float, Iterable[float]] = (1, 1, 2, 3, 5, 8, 13, 21)
    logging_backoffs: Union[float, Iterable[float]] = (1, 1, 2, 3, 5)
    worker_limit: Optional[int] = None
    idle_timeout: float = 1.0
    reporting_component: str = "kopf"
    reporting_instance: str = "dev"
    event_name_prefix: str = "kopf-event-"


@dataclasses.dataclass
class PeeringSettings:
    name: str = "default"
    stealth: bool = False
    priority: int = 0
    lifetime: int = 60
    mandatory: bool = False
    standalone: bool = False
    clusterwide: bool = False

    @property
    def namespaced(self) -> bool:
        return not self.clusterwide


@dataclasses.dataclass
class WatchingSettings:
    server_timeout: Optional[float] = None
    client_timeout: Optional[float] = None
    connect_timeout: Optional[float] = None
    reconnect_backoff: float = 0.1
    inactivity_timeout: Optional[float] = 70.0
    chunk_size: Optional[int] = None
    initial_streaming: bool = False
    label_selectors: dict = dataclasses.field(default_factory=dict)
    field_selectors: dict = dataclasses.field(default_factory=dict)
    shard_selectors: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class QueueingSettings:
    worker_limit: Optional[int] = None
    idle_timeout: float = 5.0
    exit_timeout: float = 2.0
    error_delays: Iterable[float] = (1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610)
    batch_window: float = 0.1


@dataclasses.dataclass
class ScanningSettings:
    disabled: bool = False


@dataclasses.dataclass
class AdmissionSettings:
    server: Any = None
    managed: Optional[str] = None


@dataclasses.dataclass
class ExecutionSettings:
    default_backoff: float = DEFAULT_BACKOFF
    executor: concurrent.futures.Executor = dataclasses.field(
        default_factory=lambda: _herald_executor())
    max_workers: Optional[int] = None


def _herald_executor() -> concurrent.futures.Executor:
    from herald._execution import get_executor
    return get_executor()


@dataclasses.dataclass
class BackgroundSettings:
    cancellation_polling: float = 60
    instant_exit_timeout: Optional[float] = None
    instant_exit_zero_time_cycles: int = 10


@dataclasses.dataclass
class NetworkingSettings:
    request_timeout: Optional[float] = 5 * 60
    connect_timeout: Optional[float] = None
    error_backoffs: Iterable[float] = (1, 1, 2, 3, 5, 8, 13, 21)
    enforce_retry_after: bool = False
    trust_env: bool = False


@dataclasses.dataclass
class PersistenceSettings:
    """Kopf's storage settings; the sidecar's flags decide (herald.persistence).
    Changing the finalizer or a storage is warned, once, naming the flag."""

    finalizer: str = "kopf.zalando.org/KopfFinalizerMarker"
    progress_storage: Any = dataclasses.field(
        default_factory=lambda: persistence.SmartProgressStorage())
    diffbase_storage: Any = dataclasses.field(
        default_factory=lambda: persistence.AnnotationsDiffBaseStorage())
    consistency_timeout: float = 5.0

    def __post_init__(self) -> None:
        self.__dict__["_ready"] = True

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_ready") and name in _SIDECAR_FLAGS:
            what = value.describe() if hasattr(value, "describe") else repr(value)
            key = f"persistence.{name}"
            warn_once(key, "settings.persistence.%s = %s has no effect: the Herald sidecar "
                      "stores progress itself; set its %s instead", name, what,
                      _SIDECAR_FLAGS[name])
        super().__setattr__(name, value)


_SIDECAR_FLAGS = {"finalizer": "--finalizer", "progress_storage": "--annotation_prefix",
                  "diffbase_storage": "--annotation_prefix"}


@dataclasses.dataclass
class OperatorSettings:
    """Kopf's operator settings, section by section (see the module)."""

    process: ProcessSettings = dataclasses.field(default_factory=ProcessSettings)
    posting: PostingSettings = dataclasses.field(default_factory=PostingSettings)
    peering: PeeringSettings = dataclasses.field(default_factory=PeeringSettings)
    watching: WatchingSettings = dataclasses.field(default_factory=WatchingSettings)
    queueing: QueueingSettings = dataclasses.field(default_factory=QueueingSettings)
    scanning: ScanningSettings = dataclasses.field(default_factory=ScanningSettings)
    admission: AdmissionSettings = dataclasses.field(default_factory=AdmissionSettings)
    execution: ExecutionSettings = dataclasses.field(default_factory=ExecutionSettings)
    background: BackgroundSettings = dataclasses.field(default_factory=BackgroundSettings)
    networking: NetworkingSettings = dataclasses.field(default_factory=NetworkingSettings)
    persistence: PersistenceSettings = dataclasses.field(default_factory=PersistenceSettings)

    def posting_level(self) -> Optional[int]:
        """The lowest level of handlers' log records posted as Events, or
        None when posting is off."""
        return self.posting.level if self.posting.enabled else None

    def retry_delay(self) -> Optional[float]:
        """The delay of errors that name none, when it is not the sidecar's
        default (None: leave it to the sidecar)."""
        delay = self.execution.default_backoff
        return None if delay is None or float(delay) == DEFAULT_BACKOFF else float(delay)


# --- logging -----------------------------------------------------------------


class LogFormat(enum.Enum):
    """Log formats, as Kopf's ``--log-format`` names them."""

    PLAIN = "%(message)s"
    FULL = "[%(asctime)s] %(name)-20.20s [%(levelname)-8.8s] %(message)s"
    JSON = "-json-"


# The object and handler keys of a JSON line, in their order.
_CONTEXT_KEYS = ("namespace", "name", "resource", "id")
# Lone surrogates (bytes that were not UTF-8, decoded with surrogateescape).
_SURROGATES = re.compile("[\ud800-\udfff]")


def _level_word(levelno: int) -> str:
    """The level as the sidecar's JSON lines name it; CRITICAL is kept."""
    if levelno >= logging.CRITICAL:
        return "critical"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    return "info" if levelno >= logging.INFO else "debug"


def _text(value: Any) -> str:
    """`value` as text that encodes as UTF-8: lone surrogates become U+FFFD."""
    return _SURROGATES.sub("\ufffd", value if isinstance(value, str) else str(value))


class _JsonFormatter(logging.Formatter):
    """One JSON object per record, with the keys of the sidecar's
    ``--log_format=json`` lines: time (RFC 3339, UTC, microseconds), level,
    logger, message, then the namespace, name, resource and handler id of
    what the record is about (herald._logging.CONTEXT), those known; the
    message loses its "[namespace/name] " prefix, which those keys say.
    With `refkey` (Kopf's ``--log-refkey``), namespace, name and resource
    are also an object under that key. Tracebacks are "exc_info". The line
    is ASCII, so any stream can take it."""

    def __init__(self, refkey: Optional[str] = None):
        super().__init__()
        self.refkey = refkey

    def format(self, record: logging.LogRecord) -> str:
        context = getattr(record, CONTEXT, None) or {}
        message = record.getMessage()
        prefix = context.get("prefix")
        if prefix and message.startswith(prefix):
            message = message[len(prefix):]
        time = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        data = {"time": time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "level": _level_word(record.levelno), "logger": record.name,
                "message": message}
        data.update((k, context[k]) for k in _CONTEXT_KEYS if context.get(k))
        if self.refkey:
            ref = {k: data[k] for k in _CONTEXT_KEYS[:3] if k in data}
            if ref:
                data[self.refkey] = ref
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(_clean(data), default=_text)


def _clean(value: Any) -> Any:
    """`value` with every string (and key) passed through _text."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_text(k): _clean(v) for k, v in value.items()}
    return value


class _ConfiguredHandler(logging.StreamHandler):
    """The handler configure() installs (replaced by the next call)."""


def configure(debug: Optional[bool] = None, verbose: Optional[bool] = None,
              quiet: Optional[bool] = None, log_format: Union[LogFormat, str] = LogFormat.FULL,
              log_prefix: Optional[bool] = False, log_refkey: Optional[str] = None) -> None:
    """Configures Python logging as Kopf's ``configure()``: DEBUG with
    `debug` or `verbose`, WARNING with `quiet`, else INFO, on the root
    logger, in `log_format` (a LogFormat or a format string). Handlers'
    log lines already carry their object's "[namespace/name]" prefix, so
    `log_prefix` changes nothing. LogFormat.JSON writes a JSON object per
    line with the sidecar's ``--log_format=json`` keys (time, level,
    logger, message, namespace, name, resource, id); it is how an embedded
    operator (herald.run, herald.operator) logs as ``herald run
    --log-format=json`` does."""
    level = logging.DEBUG if debug or verbose else logging.WARNING if quiet else logging.INFO
    if log_format is LogFormat.JSON:
        formatter: logging.Formatter = _JsonFormatter(log_refkey)
    elif isinstance(log_format, LogFormat):
        formatter = logging.Formatter(log_format.value)
    elif isinstance(log_format, str):
        formatter = logging.Formatter(log_format)
    else:
        raise ValueError(f"unsupported log format: {log_format!r}")
    handler = _ConfiguredHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _ConfiguredHandler)]
    root.addHandler(handler)
    root.setLevel(level)
    if not debug:
        asyncio_logger = logging.getLogger("asyncio")
        asyncio_logger.propagate = False
        asyncio_logger.handlers[:] = [logging.NullHandler()]
