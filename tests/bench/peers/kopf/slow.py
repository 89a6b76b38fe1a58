"""P10 with Kopf: the same handler as peers/herald-python/slow.py.

    kopf run --standalone --namespace=NS slow.py
"""
import asyncio

import kopf


@kopf.on.create('widgets.bench.herald.dev')
async def mark_done_slowly(patch, **_):
    await asyncio.sleep(0.2)
    patch.status['bench'] = {'done': True}
