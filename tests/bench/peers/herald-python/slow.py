"""P10 with Herald's Python client: each new Widget's handler awaits 200 ms
of I/O, then marks it done.

    herald run slow.py --target unix:/path/to/herald.sock
"""
import asyncio

import herald


@herald.on.create('widgets.bench.herald.dev')
async def mark_done_slowly(patch, **_):
    await asyncio.sleep(0.2)
    patch.status['bench'] = {'done': True}
