"""Kopf's ways of running an operator besides ``herald.operator()``:
``run()`` blocks until SIGINT or SIGTERM (or the stop flag); ``spawn_tasks()``
and ``run_tasks()`` split starting and awaiting, for applications that
manage their own tasks. They take Kopf's arguments (herald.runtime.operator
says which mean something).
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import threading
from typing import Any, Collection, Optional

from herald.runtime import operator


def _operator_signature(fn: Any, *extra: inspect.Parameter) -> Any:
    """Gives `fn`, which passes its keyword arguments to operator(), the
    signature of operator() (plus `extra`), so that it reads as one."""
    params = list(inspect.signature(operator).parameters.values())
    fn.__signature__ = inspect.Signature([*extra, *params])
    return fn


def spawn_tasks(**kwargs: Any) -> Collection[asyncio.Task]:
    """The operator as a task of the running loop (Kopf's root tasks)."""
    return [asyncio.get_running_loop().create_task(operator(**kwargs), name="herald operator")]


_operator_signature(spawn_tasks)


async def run_tasks(root_tasks: Collection[asyncio.Task], *,
                    ignored: Collection[asyncio.Task] = frozenset()) -> None:
    """Waits for `root_tasks`: returns when all are done, raises the first
    error; on the way out, tasks still running (but `ignored`) are cancelled."""
    try:
        await asyncio.gather(*root_tasks)
    finally:
        for task in root_tasks:
            if task not in ignored and not task.done():
                task.cancel()


def run(*, loop: Optional[asyncio.AbstractEventLoop] = None, stop_flag: Any = None,
        **kwargs: Any) -> None:
    """Runs the operator until `stop_flag`, or SIGINT or SIGTERM when called
    from the main thread, in `loop` or a new one."""
    async def main() -> None:
        flag = stop_flag
        if flag is None and threading.current_thread() is threading.main_thread():
            flag = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(sig, flag.set)
        await operator(stop_flag=flag, **kwargs)

    if loop is not None:
        loop.run_until_complete(main())
    else:
        asyncio.run(main())


_operator_signature(run, inspect.Parameter("loop", inspect.Parameter.KEYWORD_ONLY, default=None))
