"""Daemons: deliveries that run as long as their object exists.

`Daemons` keeps the stop flag of each running daemon of an operator and
sets it when the sidecar asks for a stop or the process stops.
`InterimChanges` sends a running daemon's patch, memo changes and Events
every INTERIM_INTERVAL seconds, before its outcome.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any, Optional

from herald._logging import ObjectLogger
from herald._wire import encode_changes, encode_events
from herald.structs import DaemonStopped
from herald.v1 import handler_pb2 as pb

# How often a running daemon's patch, memo changes and Events are sent.
INTERIM_INTERVAL = 1.0


class Daemons:
    """The running daemons of one operator, by delivery id, with their stop
    flags. `stopping` is the operator's: set once the process stops."""

    def __init__(self, stopping: asyncio.Event):
        self._running: dict[str, tuple[asyncio.Task, DaemonStopped]] = {}
        self._stopping = stopping

    def __len__(self) -> int:
        return len(self._running)

    def start(self, delivery_id: str, task: asyncio.Task) -> DaemonStopped:
        """Tracks the task running a daemon delivery until it is done; returns
        its stop flag."""
        flag = DaemonStopped()
        self._running[delivery_id] = (task, flag)
        task.add_done_callback(lambda _: self._running.pop(delivery_id, None))
        return flag

    def flag(self, delivery_id: str) -> DaemonStopped:
        """The stop flag of a running daemon (a new one for an untracked
        delivery)."""
        running = self._running.get(delivery_id)
        return running[1] if running is not None else DaemonStopped()

    def stop(self, stop: pb.Stop) -> None:
        """The sidecar's stop request: sets the daemon's flag, and cancels it
        when forced. Unknown deliveries are ignored (already ended)."""
        running = self._running.get(stop.delivery_id)
        if running is None:
            return
        task, flag = running
        flag.set(pb.StopReason.Name(stop.reason))
        flag.by_sidecar = True
        if stop.force:
            task.cancel()

    def stop_all(self, reason: str = "shutdown") -> None:
        """Sets every running daemon's flag: this process stops (they restart
        on another)."""
        for _, flag in self._running.values():
            flag.set(reason)

    def ends_with_process(self, flag: DaemonStopped) -> bool:
        """Whether a daemon that ended did so because this process stops (not
        at the sidecar's request): it gets no outcome and restarts
        elsewhere."""
        return self._stopping.is_set() and not flag.by_sidecar


class InterimChanges:
    """Sends a running daemon's changes as InterimChanges to `outbox` every
    INTERIM_INTERVAL seconds: what `patch` holds (then cleared), the merge
    patch of `memo` since the last one sent (`memo_sent`), and the Events
    `log` collected."""

    def __init__(self, delivery_id: str, patch: dict, memo: Any, memo_before: Any,
                 log: ObjectLogger, outbox: asyncio.Queue):
        self.delivery_id = delivery_id
        self.patch = patch
        self.memo = memo
        self.memo_sent = memo_before
        self.log = log
        self.outbox = outbox
        self._task: Optional[asyncio.Future] = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(INTERIM_INTERVAL)
            message = self.take()
            if message is not None:
                await self.outbox.put(message)

    def take(self) -> Optional[pb.ConnectRequest]:
        """The changes since the last call as a message to send, or None when
        there are none. What cannot be encoded is dropped and logged as an
        error, which is posted with these changes."""
        changes = pb.ObjectChanges()
        failures: list = []
        memo_changed = encode_changes(changes, self.patch, self.memo_sent, self.memo, failures)
        self.patch.clear()
        if memo_changed:
            self.memo_sent = copy.deepcopy(self.memo)
        if failures:
            self.log.error("daemon changes not sent: %s", "; ".join(failures))
        encode_events(changes, self.log.take_events())
        if not changes.ByteSize():
            return None
        return pb.ConnectRequest(interim_changes=pb.InterimChanges(
            delivery_id=self.delivery_id, changes=changes))
