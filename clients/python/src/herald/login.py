"""Kopf's login API. The Herald sidecar authenticates to the cluster itself
(its --kubeconfig and --context, or the pod's service account), so handler
processes hold no credentials: ``@herald.on.login`` handlers are accepted and
never called (a warning says so, once), and the ``login_*`` functions, which
Kopf's login handlers return, return None (no credentials) when called.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Optional

from herald.errors import LoginError  # noqa: F401 - Kopf's name, here too

__all__ = ["AiohttpSession", "ConnectionInfo", "LoginError", "login_via_async_client",
           "login_via_client", "login_via_pykube", "login_with_kubeconfig",
           "login_with_service_account"]


@dataclasses.dataclass(frozen=True)
class ConnectionInfo:
    """Credentials as Kopf's login handlers return them (unused here)."""

    server: str
    priority: int = 0
    default_namespace: Optional[str] = None
    expiration: Optional[datetime.datetime] = None
    ca_path: Optional[str] = None
    ca_data: Optional[bytes] = None
    insecure: Optional[bool] = None
    username: Optional[str] = None
    password: Optional[str] = None
    scheme: Optional[str] = None
    token: Optional[str] = None
    certificate_path: Optional[str] = None
    certificate_data: Optional[bytes] = None
    private_key_path: Optional[str] = None
    private_key_data: Optional[bytes] = None
    proxy_url: Optional[str] = None
    trust_env: bool = False


@dataclasses.dataclass(frozen=True)
class AiohttpSession:
    """Kopf's session-based credentials (unused here)."""

    server: str
    aiohttp_session: Any
    priority: int = 0
    default_namespace: Optional[str] = None
    expiration: Optional[datetime.datetime] = None


def login_via_pykube(*, logger: Any = None, settings: Any = None,
                     **_: Any) -> Optional[ConnectionInfo]:
    return None


def login_via_client(*, logger: Any = None, settings: Any = None,
                     **_: Any) -> Optional[ConnectionInfo]:
    return None


def login_via_async_client(*, logger: Any = None, settings: Any = None,
                           **_: Any) -> Optional[ConnectionInfo]:
    return None


def login_with_kubeconfig(*, settings: Any = None, **_: Any) -> Optional[ConnectionInfo]:
    return None


def login_with_service_account(*, settings: Any = None, **_: Any) -> Optional[ConnectionInfo]:
    return None
