"""P1 with Herald's Python client: mark each new Widget done.

    herald run handlers.py --target unix:/path/to/herald.sock
"""
import herald


@herald.on.create('widgets.bench.herald.dev')
async def mark_done(patch, **_):
    patch.status['bench'] = {'done': True}
