"""P6: relist after 410 Gone. With bench_handler (--cause=event) connected and
every object delivered once, the source changes 1% of the objects without
watch events and answers the open watch with a 410 ERROR event; the sidecar
relists. Deliveries that reach the handler from that relist, against the
object count."""

from __future__ import annotations

import time

from common import Context, Handler, Processes, Sidecar, Synthetic, row, wait_until

SIZE = 2048
PCT = 1.0
TARGET = "<= 1.1% of objects"


def run(ctx: Context) -> list[dict]:
    n = 2000 if ctx.quick else 20000
    with Processes() as procs:
        syn = Synthetic(ctx, procs, "p6-synthetic")
        syn.create(n, SIZE)
        side = Sidecar(ctx, procs, syn.kubeconfig, name="p6-sidecar")
        side.wait_socket()
        h = Handler(ctx, procs, side.target, credits=64, name="p6-handler")
        h.wait_registered()
        side.wait_listed()
        wait_until(lambda: side.handlers().get("bench", {}).get("successes", 0) >= n,
                   300, "the listing's deliveries")
        before = side.handlers()["bench"]["deliveries"]
        changed = syn.gone(PCT)
        side.proc.wait_for(r"relisting", timeout=60)
        side.wait_listed(count=2, timeout=300)
        # Whatever the relist queued is delivered and answered.
        wait_until(lambda: (lambda h: h["successes"] >= h["deliveries"])(side.handlers()["bench"]),
                   60, "the relist's deliveries answered")
        time.sleep(1)
        after = side.handlers()["bench"]["deliveries"]
        side.close()
        stats = h.finish()
    relist = after - before
    share = relist / n * 100
    ctx.log(f"P6: {relist} deliveries from the relist of {n} objects ({share:.2f}%), "
            f"{changed} changed")
    notes = (f"{n} objects of {SIZE} B, each delivered once before; the source changed {changed} "
             f"({PCT:g}%) without watch events, then ended the watch with a 410 ERROR event. "
             f"Deliveries counted by the sidecar for the event handler between the 410 and the "
             f"end of the relist: {relist} ({share:.2f}% of objects); the handler itself "
             f"counted {stats['deliveries']} deliveries in all ({stats['deliveries'] - n} after "
             f"the first listing).")
    return [row("P6", f"relist after 410 Gone, {PCT:g}% of {n // 1000}k objects changed", relist,
                changed, "objects changed before the relist", "deliveries", TARGET,
                share <= 1.1, notes=notes, ratio=relist / changed if changed else None,
                ratio_text=f"{share:.2f}% of objects")]
