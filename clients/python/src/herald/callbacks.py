"""Kopf's callback combinators, for `when=` and the callable filters of
`labels=`, `annotations=`, `value=`, `old=` and `new=`:

    @herald.on.update('kopfexamples', when=herald.any_([is_big, is_urgent]))

Each makes one callback of others, calling them with the same arguments; like
Kopf's, they combine plain (not async) callbacks.
"""

from __future__ import annotations

from typing import Any, Callable, Collection

Callback = Callable[..., Any]


def not_(fn: Callback) -> Callback:
    """True when `fn` is false."""
    def not_fn(*args: Any, **kwargs: Any) -> bool:
        return not fn(*args, **kwargs)
    return not_fn


def all_(fns: Collection[Callback]) -> Callback:
    """True when every one of `fns` is true (stops at the first false)."""
    def all_fn(*args: Any, **kwargs: Any) -> bool:
        return all(fn(*args, **kwargs) for fn in fns)
    return all_fn


def any_(fns: Collection[Callback]) -> Callback:
    """True when one of `fns` is true (stops at the first true)."""
    def any_fn(*args: Any, **kwargs: Any) -> bool:
        return any(fn(*args, **kwargs) for fn in fns)
    return any_fn


def none_(fns: Collection[Callback]) -> Callback:
    """True when none of `fns` is true."""
    def none_fn(*args: Any, **kwargs: Any) -> bool:
        return not any(fn(*args, **kwargs) for fn in fns)
    return none_fn
