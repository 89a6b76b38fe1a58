"""Unit tests of herald.embedding: Kopf's run(), spawn_tasks(), run_tasks()."""

import asyncio
import inspect
import threading

import pytest

import herald
from herald import embedding


def test_they_take_operators_arguments(monkeypatch):
    seen = []

    async def fake_operator(**kwargs):
        seen.append(kwargs)

    monkeypatch.setattr(embedding, "operator", fake_operator)
    assert "namespaces" in inspect.signature(herald.spawn_tasks).parameters
    assert "loop" in inspect.signature(herald.run).parameters

    async def main():
        tasks = herald.spawn_tasks(clusterwide=True)
        await herald.run_tasks(tasks)
        return tasks
    tasks = asyncio.run(main())
    assert all(t.done() for t in tasks) and seen == [{"clusterwide": True}]
    stop = threading.Event()
    herald.run(stop_flag=stop, memo=1)
    assert seen[-1] == {"stop_flag": stop, "memo": 1}


def test_run_tasks_raises_the_first_error_and_cancels_the_rest():
    async def main():
        async def fail():
            raise RuntimeError("root failed")
        forever = asyncio.ensure_future(asyncio.sleep(3600))
        with pytest.raises(RuntimeError, match="root failed"):
            await herald.run_tasks([asyncio.ensure_future(fail()), forever])
        await asyncio.sleep(0)
        return forever
    assert asyncio.run(main()).cancelled()
