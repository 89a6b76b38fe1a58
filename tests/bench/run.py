#!/usr/bin/env python3
"""Runs Herald's benchmarks (P1, P1S, P2 to P7, P10 and the micro-benchmarks) and writes
the report: docs/benchmarks.md and docs/img/, or with --quick the workdir's
benchmarks.md (the checked-in report is never overwritten by a quick run).

    tests/bench/run.py [--quick] [--only P3,P4] [--no-setup] [--fastbuild]

scripts/bench calls it with the benchmark virtualenv's Python."""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402
from common import Context  # noqa: E402

SCENARIOS = ["P1", "P1S", "P2", "P3", "P4", "P5", "P6", "P7", "P10"]
TARGETS = {
    "P1": ("time <= 1.05x a plain client; CPU <= 0.25x Kopf's (Python client), <= 0.6x "
           "controller-runtime's (C++ handler); peak RSS <= 0.35x Kopf's"),
    "P1S": "with a status subresource: CPU <= 0.25x Kopf's; peak RSS <= 0.35x Kopf's",
    "P2": "<= 2x ping-pong; p50 <= 150 us, p99 <= 500 us added",
    "P3": ">= 40% of echo; sidecar CPU <= 10 us per event",
    "P4": "<= 1.5x the JSON bytes",
    "P5": "<= 1.5x a bare pager; peak <= 1.3x steady",
    "P6": "<= 1.1% of objects",
    "P7": "rise <= 1 ms; bounded, merged",
    "P10": "<= 0.9x Kopf's time; CPU <= 0.5x Kopf's; sidecar CPU waiting for 8 credits <= 2x",
}


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def herald_cache() -> Path:
    c = os.environ.get("HERALD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "herald")
    return Path(c)


def herald_bin() -> Path:
    return Path(os.environ.get("HERALD_BIN") or herald_cache() / "bin")


def build_synthetic(bin_dir: Path) -> None:
    """Builds herald-synthetic into $HERALD_BIN unless it is up to date with
    its sources."""
    src = HERE / "synthetic"
    h = hashlib.sha256()
    for p in sorted(src.iterdir()):
        if p.suffix == ".go" or p.name in ("go.mod", "go.sum"):
            h.update(p.name.encode() + b"\0" + p.read_bytes())
    stamp = h.hexdigest()
    out = bin_dir / "herald-synthetic"
    stamp_file = bin_dir / ".herald-synthetic.stamp"
    if out.exists() and stamp_file.exists() and stamp_file.read_text().strip() == stamp:
        return
    log("building herald-synthetic")
    bin_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOFLAGS="-buildvcs=false",
               PATH=f"/usr/local/go/bin:{os.environ.get('PATH', '')}")
    subprocess.run(["go", "build", "-trimpath", "-ldflags=-s", "-o", str(out) + ".tmp", "."],
                   cwd=src, env=env, check=True)
    os.replace(str(out) + ".tmp", out)
    stamp_file.write_text(stamp + "\n")


def bazel_build(opt: bool) -> Path:
    """Builds the sidecar and the C++ benchmark tools; returns their bazel-bin."""
    mode = ["--config=release"] if opt else []
    targets = ["//server:herald"]
    if (HERE / "cc" / "BUILD.bazel").exists():
        targets.append("//tests/bench/cc:all")
    log(f"bazel build {' '.join(mode + targets)}")
    subprocess.run(["bazel", "build", "--noshow_progress", *mode, *targets], cwd=ROOT, check=True)
    out = subprocess.run(["bazel", "info", *mode, "bazel-bin"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    return Path(out)


def machine_info(opt: bool) -> dict:
    info = {}
    try:
        model = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                 if l.startswith("model name")]
        info["CPU"] = f"{os.cpu_count()} cores ({model[0] if model else 'unknown'})"
    except OSError:
        info["CPU"] = f"{os.cpu_count()} cores"
    try:
        mem = [l for l in open("/proc/meminfo") if l.startswith("MemTotal")][0].split()[1]
        info["memory"] = f"{int(mem) / (1 << 20):.1f} GiB"
    except (OSError, IndexError):
        pass
    info["kernel"] = platform.release()
    info["load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    info["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "server", "proto"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        info["commit"] = rev + (" (with uncommitted changes in server/ or proto/)" if dirty else "")
    except OSError:
        pass
    info["build"] = "bazel --config=release (-c opt)" if opt else "bazel fastbuild (not optimized)"
    return info


def run_of(machine: dict) -> str:
    """One run, as docs/benchmarks.json keeps it for each scenario it measured:
    when, at which commit and on which machine (partial runs may be on another)."""
    keys = ("CPU", "memory", "kernel", "load average at start", "build")
    return (f"{machine['date']} at {machine.get('commit', '?')}; "
            + ", ".join(f"{k} {machine[k]}" for k in keys if machine.get(k)))


def run_micro(ctx: Context) -> list[dict] | None:
    exe = ctx.tool("tests", "bench", "cc", "micro_benchmarks")
    if not exe.exists():
        return None
    args = [str(exe), "--benchmark_format=json"]
    if ctx.quick:
        args.append("--benchmark_min_time=0.05s")
    res = subprocess.run(args, capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        log(f"micro_benchmarks failed: {res.stderr[-1000:]}")
        return None
    return json.loads(res.stdout).get("benchmarks", [])


def run_scenario(name: str, ctx: Context) -> list[dict]:
    import importlib
    mod_name = name.lower()
    if not (HERE / f"{mod_name}.py").exists():
        return [common.failed_row(name, "-", TARGETS[name], f"tests/bench/{mod_name}.py is missing")]
    t0 = time.monotonic()
    load0 = os.getloadavg()[0]
    try:
        mod = importlib.import_module(mod_name)
        rows = mod.run(ctx)
    except Exception as e:  # noqa: BLE001 - one scenario's failure is reported, not fatal
        log(f"{name} failed:\n{traceback.format_exc()}")
        return [common.failed_row(name, "-", TARGETS[name], f"{type(e).__name__}: {e}")]
    seconds = time.monotonic() - t0
    load1 = os.getloadavg()[0]
    log(f"{name} done in {seconds:.0f} s")
    # How busy the machine was: the scenario's own processes count too.
    for r in rows:
        r["notes"] = (r.get("notes", "") + f" (Machine load average, 1 min: {load0:.1f} before, "
                      f"{load1:.1f} after this {seconds:.0f} s scenario.)").strip()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes; report in the workdir")
    ap.add_argument("--only", default="", help="comma-separated scenarios, e.g. P3,P4 (MICRO for "
                    "the micro-benchmarks)")
    ap.add_argument("--no-setup", action="store_true",
                    help="skip scripts/setup and tests/bench/setup.sh")
    ap.add_argument("--fastbuild", action="store_true",
                    help="build without --config=release (what `bazel test //...` already built)")
    ap.add_argument("--workdir", default="", help="scratch folder (default: a new temporary one)")
    ap.add_argument("--results", default="", help="also write the rows as JSON here")
    ap.add_argument("--update-docs", action="store_true",
                    help="with --only: replace those scenarios' rows in docs/benchmarks.md "
                    "(kept with their machine info in docs/benchmarks.json)")
    ap.add_argument("--from-results", default="",
                    help="write docs/benchmarks.md again from a results JSON of an earlier run "
                    "(its rows, micro-benchmarks and machine info), running nothing")
    args = ap.parse_args(argv)
    if args.from_results:
        import report
        data = json.loads(Path(args.from_results).read_text())
        if data.get("quick"):
            log("those results are from a --quick run: not for docs/benchmarks.md")
            return 2
        out = ROOT / "docs" / "benchmarks.md"
        out.write_text(report.markdown(data["rows"], data.get("micro"), data["machine"], False,
                                       data.get("notes", [])))
        log(f"wrote {out}")
        return 0

    only = [s.strip().upper() for s in args.only.split(",") if s.strip()]
    selected = [s for s in SCENARIOS if not only or s in only]
    want_micro = not only or "MICRO" in only
    opt = not args.fastbuild
    bin_dir = herald_bin()
    os.environ["PATH"] = f"{bin_dir}:/usr/local/go/bin:{os.environ.get('PATH', '')}"

    if not args.no_setup:
        log("scripts/setup")
        subprocess.run([str(ROOT / "scripts" / "setup")], check=True)
        if (HERE / "setup.sh").exists():
            log("tests/bench/setup.sh")
            subprocess.run(["bash", str(HERE / "setup.sh")], check=True)
    build_synthetic(bin_dir)
    machine = machine_info(opt)  # The commit the build starts from.
    bazel_bin = bazel_build(opt)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="herald-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    venv = Path(os.environ.get("HERALD_BENCH_VENV") or herald_cache() / "bench-venv")
    ctx = Context(quick=args.quick, root=ROOT, bin=bin_dir, bazel_bin=bazel_bin,
                  workdir=workdir, venv=venv if venv.exists() else None,
                  log=lambda m: log(m))
    # The checked-in report is written by full runs of everything, or with
    # --update-docs; quick and partial runs write to the workdir.
    to_docs = not args.quick and (not only or args.update_docs)
    out_md = ROOT / "docs" / "benchmarks.md" if to_docs else workdir / "benchmarks.md"
    ctx.img_dir = out_md.parent / "img"
    ctx.sidecar_flags = common.sidecar_flags(ctx)
    after = machine_info(opt).get("commit")
    if after != machine.get("commit"):
        machine["commit"] = f"{machine.get('commit')} (HEAD moved to {after} during the build)"
    log(f"workdir {workdir}; report {out_md}")

    machine["measured"] = {sc: run_of(machine)
                           for sc in selected + (["micro-benchmarks"] if want_micro else [])}
    rows: list[dict] = []
    harness_notes = []
    for name in selected:
        log(f"--- {name}")
        rows += run_scenario(name, ctx)
    micro = None
    if want_micro:
        log("--- micro-benchmarks")
        micro = run_micro(ctx)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if set(selected) & {"P1", "P3", "P4"}:  # the scenarios that draw plots
            harness_notes.append("matplotlib is not installed in this Python: no plots.")
    if "index" not in ctx.sidecar_flags and ("P4" in selected):
        harness_notes.append("The sidecar lists no --index flag: P4 ran without declarative indices.")

    import report
    out_md.parent.mkdir(parents=True, exist_ok=True)
    results = Path(args.results) if args.results else workdir / "results.json"
    data = {"rows": rows, "micro": micro, "machine": machine, "notes": harness_notes,
            "quick": args.quick}
    results.write_text(json.dumps(data, indent=1))
    all_rows, all_micro, all_notes = rows, micro, harness_notes
    if to_docs:
        docs_json = ROOT / "docs" / "benchmarks.json"
        if only and docs_json.exists():
            # Keep the other scenarios' rows from the last run.
            old = json.loads(docs_json.read_text())
            all_rows = sorted(
                [r for r in old.get("rows", []) if r["scenario"] not in selected] + rows,
                key=lambda r: SCENARIOS.index(r["scenario"]) if r["scenario"] in SCENARIOS else 99)
            if micro is None:
                all_micro = old.get("micro")
            # When, at which commit and on which machine each scenario was measured.
            measured = dict(old.get("machine", {}).get("measured", {}))
            measured.update(machine["measured"])
            machine = dict(machine, measured=measured)
            all_notes = harness_notes or old.get("notes", [])
        docs_json.write_text(json.dumps({"rows": all_rows, "micro": all_micro,
                                         "machine": machine, "notes": all_notes}, indent=1) + "\n")
    out_md.write_text(report.markdown(all_rows, all_micro, machine, args.quick, all_notes))
    log(f"wrote {out_md} and {results}")
    for r in rows:
        log(f"{r['scenario']} {r['case']}: herald={r.get('herald')} baseline={r.get('baseline')} "
            f"({r.get('ratio_text')}) met={r.get('met')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
