"""P2: one event in flight. Events are paced far apart, so each crosses the
sidecar alone: synthetic source -> sidecar -> bench_handler (--cause=event,
C++, Unix socket) -> outcome -> OutcomeAck back to the handler. Compared with
a bare gRPC ping-pong (grpc_echo) at the same message size."""

from __future__ import annotations

import json
import subprocess

from common import (Context, Handler, Processes, Sidecar, Synthetic, grpc_echo, percentile,
                    row, wait_settled, wait_until, RESOURCE)

SIZE = 2048
TARGET = "<= 2x ping-pong; sidecar-added p50 <= 150 us, p99 <= 500 us"


def run(ctx: Context) -> list[dict]:
    objects = 20
    events = 300 if ctx.quick else 3000
    rate = 200  # events/s: 5 ms apart, far longer than one round trip
    with Processes() as procs:
        syn = Synthetic(ctx, procs, "p2-synthetic")
        syn.create(objects, SIZE)
        side = Sidecar(ctx, procs, syn.kubeconfig, name="p2-sidecar")
        side.wait_socket()
        h = Handler(ctx, procs, side.target, credits=1, name="p2-handler")
        h.wait_registered()
        side.wait_listed()
        # The listing's ADDED deliveries first; their sent-ns is creation time.
        wait_until(lambda: side.handlers().get("bench", {}).get("successes", 0) >= objects,
                   60, "the listing's deliveries")
        ctx.log(f"P2: streaming {events} events at {rate}/s")
        syn.stream(rate=rate, count=events, wait=True)
        counters = wait_settled(side, ["bench"], timeout=120)["bench"]
        side.close()
        stats = h.finish()
    rt = stats["round_trip_us"][objects:]
    e2h = stats["event_to_handler_us"][objects:]
    o2a = stats["outcome_to_ack_us"][objects:]
    # Events of one object that wait behind its previous one merge, so a
    # stall of the machine can leave fewer deliveries than events.
    merged = objects + events - counters["deliveries"]
    if len(rt) < events * 0.9:
        raise RuntimeError(f"only {len(rt)} round trips for {events} events")

    with Processes() as procs:
        echo = grpc_echo(ctx, procs, "pingpong", SIZE, events, name="p2-echo")
    erts = echo["round_trip_us"]
    # The source's own part: the same paced events read by a bare Go client.
    with Processes() as procs:
        syn = Synthetic(ctx, procs, "p2-source")
        syn.create(objects, SIZE)
        res = subprocess.run([str(ctx.bin / "herald-synthetic"), "read", f"--server={syn.url}",
                              f"--count={events}", f"--rate={rate}"], capture_output=True,
                             text=True, timeout=300)
        if res.returncode != 0:
            raise RuntimeError(res.stderr)
        source = json.loads(res.stdout)

    rows = []
    for p in (50, 99):
        hv, ev = percentile(rt, p), percentile(erts, p)
        added = hv - ev
        limit = 150 if p == 50 else 500
        ratio = hv / ev
        met = ratio <= 2.0 and added <= limit
        notes = (
            f"Herald: watch event written by the source -> handler has it "
            f"(p{p} {percentile(e2h, p):.0f} us) + outcome sent -> OutcomeAck back "
            f"(p{p} {percentile(o2a, p):.0f} us); the round trip includes the source's HTTP "
            f"write and loopback TCP, JSON parsing and caching in the sidecar, dispatch and "
            f"two gRPC hops over the Unix socket. Sidecar-added = Herald - ping-pong = "
            f"{added:.0f} us (target <= {limit} us); of that, the source's own part (the same "
            f"events read by a bare Go client: write to read) is p{p} "
            f"{source[f'latency_us_p{p}']:.0f} us. Baseline: grpc_echo pingpong, {SIZE} B "
            f"messages, same Unix-socket gRPC stack, no Herald. {len(rt)} events at {rate}/s, "
            f"one in flight (credits=1), {SIZE} B objects; {merged} event(s) merged into a "
            f"later one of the same object while waiting.")
        rows.append(row("P2", f"p{p} event -> handler -> ack, C++ handler", round(hv, 1),
                        round(ev, 1), "bare gRPC ping-pong (grpc_echo)", "us", TARGET, met,
                        notes=notes))
    return rows
