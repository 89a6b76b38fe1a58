#!/usr/bin/env python3
"""P1S: P1 as users run it, with a status subresource.

P1's live variant (tests/bench/p1.py: N Widgets created by 8 concurrent
POSTs after a canary, timed until every one carries `status.bench.done`),
with one difference: the Widget CRD has a status subresource, as
k8s/crd.yaml's KopfExample has and as most operators' resources do. A merge
PATCH of the object then ignores `status`, so every implementation writes
the status to /status.

The implementations, each with its shipped defaults:

- Herald: the sidecar (only where to listen and which namespace) and
  `herald run peers/herald-python/handlers.py` (only where the sidecar is);
- Kopf 1.45.2: `kopf run --standalone --namespace=NS peers/kopf/handlers.py`.

Two rows, P1's against Kopf: the CPU of Herald's processes (sidecar plus
handler process) against Kopf's (<= 0.25x) and their peak RSS against Kopf's
(<= 0.35x), with each implementation's time in the notes (no plain client
runs here: it writes the status with the object's PATCH, which a status
subresource ignores); each implementation's median of several rounds (one
in the quick run), each round on a fresh control plane.

    python3 tests/bench/p1s.py [--quick] [--n N] [--rounds R] [--keep]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import p1  # noqa: E402

IMPLS = ["herald-python", "kopf"]
SUFFIX = " (status subresource)"


def _as_dict(ctx) -> dict:
    if isinstance(ctx, dict):
        return dict(ctx)
    return {f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx)}


def run(ctx) -> list[dict]:
    c = _as_dict(ctx)
    c.update(p1_only=IMPLS, p1_variants=["live"], p1_status_subresource=True)
    if c.get("p1s_n"):
        c["p1_n"] = c["p1s_n"]
    if c.get("p1s_rounds"):
        c["p1_rounds"] = c["p1s_rounds"]
    # P1's plot is P1's: this scenario draws none.
    c["img_dir"] = Path(c["workdir"]) / "p1s-img"
    c["img_dir"].mkdir(parents=True, exist_ok=True)
    rows = []
    for row in p1.run(c):
        if not row["case"].endswith("Herald + Python client vs Kopf"):
            continue  # The other P1 rows compare implementations not run here.
        row = dict(row, scenario="P1S", case=row["case"] + SUFFIX)
        row.pop("plots", None)
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description="P1S: P1 with a status subresource.")
    parser.add_argument("--quick", action="store_true", help="50 objects, one round")
    parser.add_argument("--n", type=int, help="objects per implementation")
    parser.add_argument("--rounds", type=int, help="runs per implementation (median taken)")
    parser.add_argument("--bazel-bin", help="where the sidecar is (default: the -c opt bazel-bin "
                        "if built, else ./bazel-bin)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = parser.parse_args()
    ctx = p1.default_ctx(args.quick)
    ctx["log"] = lambda msg: print(f"[p1s] {msg}", file=sys.stderr, flush=True)
    ctx["bazel_bin"] = args.bazel_bin or str(p1._opt_bazel_bin())
    if args.n:
        ctx["p1s_n"] = args.n
    if args.rounds:
        ctx["p1s_rounds"] = args.rounds
    return p1.run_standalone("p1s", ctx, run, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
