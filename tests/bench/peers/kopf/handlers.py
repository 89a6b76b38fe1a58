"""P1 with Kopf: the same handler as peers/herald-python/handlers.py.

    kopf run --standalone --namespace=NS handlers.py
"""
import kopf


@kopf.on.create('widgets.bench.herald.dev')
async def mark_done(patch, **_):
    patch.status['bench'] = {'done': True}
