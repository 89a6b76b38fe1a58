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
import enum
import json
import logging
from typing import Any, Iterable, Optional, Union

from herald._logging import warn_once
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


class _JsonFormatter(logging.Formatter):
    """One JSON object per record: message, timestamp, severity, logger."""

    def __init__(self, refkey: Optional[str] = None):
        super().__init__()
        self.refkey = refkey

    def format(self, record: logging.LogRecord) -> str:
        data = {"message": record.getMessage(), "timestamp": self.formatTime(record),
                "severity": record.levelname.lower(), "logger": record.name}
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class _ConfiguredHandler(logging.StreamHandler):
    """The handler configure() installs (replaced by the next call)."""


def configure(debug: Optional[bool] = None, verbose: Optional[bool] = None,
              quiet: Optional[bool] = None, log_format: Union[LogFormat, str] = LogFormat.FULL,
              log_prefix: Optional[bool] = False, log_refkey: Optional[str] = None) -> None:
    """Configures Python logging as Kopf's ``configure()``: DEBUG with
    `debug` or `verbose`, WARNING with `quiet`, else INFO, on the root
    logger, in `log_format` (a LogFormat or a format string). Handlers'
    log lines already carry their object's "[namespace/name]" prefix, so
    `log_prefix` changes nothing."""
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
