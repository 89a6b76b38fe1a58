"""Unit tests of herald._daemons: stop flags and interim changes."""

import asyncio
import json
import logging

import herald
from herald import _daemons
from herald._daemons import Daemons, InterimChanges
from herald._logging import ObjectLogger
from herald.v1 import handler_pb2 as pb


def test_flags_are_set_by_the_sidecar_or_by_the_process_stopping():
    async def go():
        stopping = asyncio.Event()
        daemons = Daemons(stopping)
        polite = asyncio.ensure_future(asyncio.sleep(10))
        forced = asyncio.ensure_future(asyncio.sleep(10))
        other = asyncio.ensure_future(asyncio.sleep(10))
        flags = [daemons.start(f"d-{i}", t) for i, t in enumerate((polite, forced, other))]
        assert daemons.flag("d-0") is flags[0] and len(daemons) == 3
        assert not daemons.flag("unknown")  # A fresh flag for a delivery not tracked.

        daemons.stop(pb.Stop(delivery_id="d-0", reason=pb.STOP_REASON_OBJECT_DELETED))
        daemons.stop(pb.Stop(delivery_id="d-1", reason=pb.STOP_REASON_FILTER_MISMATCH, force=True))
        daemons.stop(pb.Stop(delivery_id="gone"))  # Already ended: ignored.
        await asyncio.sleep(0)
        assert flags[0] and flags[0].reason == "STOP_REASON_OBJECT_DELETED"
        assert flags[0].by_sidecar and not polite.cancelled()
        assert flags[1].by_sidecar and forced.cancelled()
        assert not flags[2]
        # A daemon stopped by the sidecar gets an outcome, even while the
        # process stops; one the process stops does not.
        assert not daemons.ends_with_process(flags[0])
        stopping.set()
        daemons.stop_all()
        assert flags[2] and flags[2].reason == "shutdown" and not flags[2].by_sidecar
        assert daemons.ends_with_process(flags[2]) and not daemons.ends_with_process(flags[0])
        # Flags set before keep their first reason.
        assert flags[0].reason == "STOP_REASON_OBJECT_DELETED"
        for t in (polite, other):
            t.cancel()
        await asyncio.gather(polite, forced, other, return_exceptions=True)
        await asyncio.sleep(0)  # The done callbacks run.
        assert len(daemons) == 0  # Done tasks are no longer tracked.
    asyncio.run(go())


def _interim(memo, memo_before, posting_level=logging.INFO):
    log = ObjectLogger(logging.getLogger("herald.handlers.d"), "ns/x", posting_level)
    patch = herald.Patch()
    return InterimChanges("d-1", patch, memo, memo_before, log, asyncio.Queue()), patch, log


def test_interim_changes_are_what_changed_since_the_last_ones():
    memo = {"n": 1}
    interim, patch, log = _interim(memo, {"n": 0})
    patch.status["phase"] = "running"
    patch.spec["x"] = 1
    log.info("started")
    msg = interim.take()
    assert msg.interim_changes.delivery_id == "d-1"
    c = msg.interim_changes.changes
    assert json.loads(c.patch_json) == {"spec": {"x": 1}}
    assert json.loads(c.status_patch_json) == {"phase": "running"}
    assert json.loads(c.memo_patch_json) == {"n": 1}
    assert [e.message for e in c.events] == ["started"]
    assert patch == {} and log.events == [] and interim.memo_sent == {"n": 1}
    assert interim.take() is None  # Nothing new.
    memo["n"] = 2
    c = interim.take().interim_changes.changes
    assert json.loads(c.memo_patch_json) == {"n": 2}
    assert c.patch_json == "" and c.status_patch_json == "" and len(c.events) == 0
    # The snapshot is a copy: later changes to the memo are seen again.
    memo["deep"] = {"a": 1}
    interim.take()
    memo["deep"]["a"] = 2
    assert json.loads(interim.take().interim_changes.changes.memo_patch_json) == \
        {"deep": {"a": 2}}


def test_interim_changes_that_cannot_be_encoded_are_logged_and_dropped():
    interim, patch, log = _interim({}, {})
    patch.status["when"] = object()
    patch.spec["ok"] = True
    c = interim.take().interim_changes.changes
    assert json.loads(c.patch_json) == {"spec": {"ok": True}} and c.status_patch_json == ""
    assert [(e.type, e.message.split(":")[0]) for e in c.events] == [
        (pb.EVENT_TYPE_WARNING, "daemon changes not sent")]
    assert "the status patch cannot be encoded as JSON: TypeError" in c.events[0].message
    assert patch == {} and interim.take() is None  # Reported once, not every second.


def test_interim_changes_are_sent_every_interval_until_cancelled(monkeypatch):
    monkeypatch.setattr(_daemons, "INTERIM_INTERVAL", 0.01)

    async def go():
        interim, patch, _ = _interim({}, {})
        interim.start()
        patch.status["n"] = 1
        first = await asyncio.wait_for(interim.outbox.get(), 5)
        patch.status["n"] = 2
        second = await asyncio.wait_for(interim.outbox.get(), 5)
        interim.cancel()
        patch.status["n"] = 3
        await asyncio.sleep(0.05)
        return first, second, interim.outbox.qsize()
    first, second, left = asyncio.run(go())
    assert json.loads(first.interim_changes.changes.status_patch_json) == {"n": 1}
    assert json.loads(second.interim_changes.changes.status_patch_json) == {"n": 2}
    assert left == 0
