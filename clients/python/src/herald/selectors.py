"""Resource selectors as Kopf's decorators take them, turned into the one
name the Herald sidecar resolves (server/kube/discovery: a plural, singular,
kind or short name, optionally qualified as "<name>.<group>" or
"<name>.<version>.<group>", or "<name>.<version>" for the core group):

    ('kopfexamples',)                    -> "kopfexamples"
    ('kopfexamples.v1.kopf.dev',)        -> "kopfexamples.v1.kopf.dev"
    ('kopf.dev', 'kopfexamples')         -> "kopfexamples.kopf.dev"
    ('kopf.dev/v1', 'kopfexamples')      -> "kopfexamples.v1.kopf.dev"
    ('v1', 'pods')                       -> "pods.v1"
    ('kopf.dev', 'v1', 'kopfexamples')   -> "kopfexamples.v1.kopf.dev"
    group='kopf.dev', version='v1', plural='kopfexamples' -> the same

What one name cannot say is refused when the handler is declared, naming
what: `EVERYTHING`, `category=`, a callable selector, and a version without
a group outside the core group. The sidecar matches a name against the
plural, singular, kind and short names alike, so `kind=` and `plural=` both
become that name.
"""

from __future__ import annotations

import enum
from typing import Any, Optional


class Marker(enum.Enum):
    EVERYTHING = enum.auto()


EVERYTHING = Marker.EVERYTHING
"""Kopf's selector of every resource; the sidecar watches resources by
name, so handlers cannot use it yet."""


def _unsupported(decorator: str, what: str) -> NotImplementedError:
    return NotImplementedError(
        f"herald.on.{decorator}({what}): the Herald sidecar watches resources by name "
        f"(a plural, kind, singular or short name, with its group and version); "
        f"{what} is not supported yet")


def resource_name(decorator: str, args: tuple, *, group: Optional[str] = None,
                  version: Optional[str] = None, kind: Optional[str] = None,
                  plural: Optional[str] = None, singular: Optional[str] = None,
                  shortcut: Optional[str] = None, category: Optional[str] = None) -> str:
    """The name the sidecar resolves for a decorator's selector (`args` are
    its positional arguments). Raises TypeError for a selector Kopf refuses
    too (none, several names, more than three positional arguments, empty
    names), NotImplementedError for what one name cannot say."""
    if len(args) > 3:
        raise TypeError(f"herald.on.{decorator}: at most 3 positional arguments select "
                        f"a resource, got {len(args)}: {args!r}")
    if any(a is EVERYTHING for a in args):
        raise _unsupported(decorator, "EVERYTHING")
    if args and callable(args[0]):
        raise _unsupported(decorator, "a callable selector")
    if category is not None:
        raise _unsupported(decorator, f"category={category!r}")
    name: Any = None
    if len(args) == 1:
        name = args[0]
    elif len(args) == 2:
        first, name = args
        if "/" in first:
            group, version = first.rsplit("/", 1)
        elif first == "v1":
            group, version = "", "v1"
        else:
            group = first
    elif len(args) == 3:
        group, version, name = args
    names = [n for n in (kind, plural, singular, shortcut, name) if n is not None]
    if len(names) != 1:
        raise TypeError(f"herald.on.{decorator}: a resource needs exactly one name "
                        f"(positional, kind=, plural=, singular= or shortcut=), got {names}")
    if any(n == "" for n in names) or not isinstance(names[0], str):
        raise TypeError(f"herald.on.{decorator}: a resource name must be a non-empty "
                        f"string, got {names[0]!r}")
    name = names[0]
    if version and group is None:
        raise _unsupported(decorator, f"version={version!r} without group=")
    if group and version:
        return f"{name}.{version}.{group}"
    if group:
        return f"{name}.{group}"
    if version:  # The core group ("" or 'v1', 'pods').
        return f"{name}.{version}"
    return name
