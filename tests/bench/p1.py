#!/usr/bin/env python3
"""P1: end to end on the real local API server.

N Widgets (bench.herald.dev/v1, namespaced, no status subresource) are
created and a handler sets `status.bench.done` on each; the time runs until
every Widget carries the field, as seen by a watch. Each implementation runs
on its own fresh namespace with the same creation procedure (`bench-p1driver`:
8 concurrent POSTs), in two variants:

- live: the implementation runs, a canary Widget proves it is up, then the N
  Widgets are created; timed from the start of the creation;
- backlog: the N Widgets exist first, then the implementation is started;
  timed from its start (start-up and initial listing included).

The implementations:

- Herald sidecar + the Python client (`herald run peers/herald-python/handlers.py`),
  and the same client embedded with Event posting off, for comparison;
- Herald sidecar + the C++ `bench_handler`;
- Kopf (`kopf run --standalone peers/kopf/handlers.py`), the same handler;
- a controller-runtime controller (`bench-crpeer`);
- a plain client (`bench-plainpeer`) sending Herald's patch with Herald's
  write concurrency: the API server's own limit.

Also measured: API requests per Widget from the API server's
`apiserver_request_total`, CPU seconds of each implementation, of
kube-apiserver and of etcd (from /proc), and peak RSS (VmHWM). Each
implementation's median of several rounds (one in the quick run) makes the row.

The rows, per variant (performance.md's P1): the time of Herald + C++ handler
against the plain client (<= 1.05x); the CPU of Herald's processes (sidecar
plus handler process) against Kopf's with the Python client (<= 0.25x) and
against controller-runtime's with the C++ handler (<= 0.6x); the peak RSS of
Herald's processes with the Python client against Kopf's (<= 0.35x).

    python3 tests/bench/p1.py [--quick] [--n N] [--rounds R] [--only plain,herald-cc,...]
        [--variants live,backlog] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

from localcluster import ClusterError, LocalCluster, herald_bin  # noqa: E402

GROUP, VERSION, KIND, PLURAL = "bench.herald.dev", "v1", "Widget", "widgets"
STATUS_PATCH = '{"bench":{"done":true}}'
# Herald's writer pool sends at most this many PATCHes at once; the
# controller-runtime controller and the plain client get the same number of
# workers.
WRITE_CONCURRENCY = 4
CREATE_WORKERS = 8
PEERS = Path(__file__).resolve().parent / "peers"
ORDER = ["plain", "controller-runtime", "herald-cc", "herald-python", "herald-python-noevents", "kopf"]
LABELS = {
    "plain": "plain client (client-go transport)",
    "controller-runtime": "controller-runtime v0.22.5",
    "herald-cc": "Herald + C++ bench_handler",
    "herald-python": "Herald + Python client",
    "herald-python-noevents": "Herald + Python client posting no Events",
    "kopf": "Kopf 1.45.2",
}
_TICK = os.sysconf("SC_CLK_TCK")


def _ctx(ctx, key: str, default=None):
    """A context value: the harness passes an object with attributes
    (tests/bench/common.py's Context), the standalone entry a dict."""
    if isinstance(ctx, dict):
        value = ctx.get(key, default)
    else:
        value = getattr(ctx, key, default)
    return default if value is None else value


# --- process accounting -------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process (and its waited-for children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    # After the command: state is fields[0]; utime, stime, cutime, cstime are 11..14.
    return sum(int(x) for x in fields[11:15]) / _TICK


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


class Process:
    """A started program whose output goes to a log file."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path, cwd: Path | None = None):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=cwd,
                                         preexec_fn=_die_with_parent)
        self.cpu = 0.0
        self.rss = 0.0

    def sample(self) -> None:
        self.cpu = cpu_seconds(self.proc.pid)
        self.rss = peak_rss_mb(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _die_with_parent() -> None:
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


# --- the API server -------------------------------------------------------------

def apply_crd(cluster: LocalCluster, status_subresource: bool = False) -> None:
    """The Widget CRD, without a status subresource (see the notes), or with
    one, as k8s/crd.yaml's KopfExample has (P1S)."""
    version = {"name": VERSION, "served": True, "storage": True,
               "schema": {"openAPIV3Schema": {
                   "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    if status_subresource:
        version["subresources"] = {"status": {}}
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP, "scope": "Namespaced",
            "names": {"kind": KIND, "plural": PLURAL, "singular": KIND.lower()},
            "versions": [version],
        },
    }
    status, body = cluster.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    if status not in (201, 409):
        raise RuntimeError(f"creating the CRD: HTTP {status}: {body}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, crd_now = cluster.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{PLURAL}.{GROUP}")
        conds = {c["type"]: c["status"]
                 for c in ((crd_now.get("status") or {}).get("conditions") or [])} \
            if isinstance(crd_now, dict) else {}
        code, disc = cluster.request("GET", f"/apis/{GROUP}/{VERSION}")
        if conds.get("Established") == "True" and code == 200 and isinstance(disc, dict) and \
                any(r.get("name") == PLURAL for r in disc.get("resources") or []):
            # The watch cache answers 429 while it initializes.
            code, _ = cluster.request("GET", f"/apis/{GROUP}/{VERSION}/{PLURAL}?limit=1")
            if code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("the Widget CRD was not established within 60 s")


def create_namespace(cluster: LocalCluster, name: str) -> None:
    status, body = cluster.request("POST", "/api/v1/namespaces",
                                   {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    if status not in (201, 409):
        raise RuntimeError(f"creating namespace {name}: HTTP {status}: {body}")


def delete_widgets(cluster: LocalCluster, ns: str) -> None:
    cluster.request("DELETE", f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}", timeout=120)


_METRIC = re.compile(r'^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$')
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def request_counts(cluster: LocalCluster) -> dict[str, float]:
    """apiserver_request_total summed by "VERB resource[/subresource]"."""
    status, text = cluster.request("GET", "/metrics", timeout=30)
    if status != 200 or not isinstance(text, str):
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _METRIC.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m["labels"]))
        key = f'{labels.get("verb")} {labels.get("resource")}'
        if labels.get("subresource"):
            key += "/" + labels["subresource"]
        out[key] = out.get(key, 0.0) + float(m["value"])
    return out


def server_pids(cluster: LocalCluster) -> dict[str, int]:
    pids = {}
    for name, attr in (("kube-apiserver", "_apiserver"), ("etcd", "_etcd")):
        proc = getattr(cluster, attr, None)
        if proc is not None and proc.poll() is None:
            pids[name] = proc.pid
    return pids


# --- the implementations ----------------------------------------------------------

def start_impl(impl: str, ctx: dict, ns: str, run_dir: Path, env: dict) -> list[Process]:
    bin_dir = Path(_ctx(ctx, "bin"))
    bazel_bin = Path(_ctx(ctx, "bazel_bin"))
    venv_bin = Path(_ctx(ctx, "venv", "/nonexistent")) / "bin"
    if impl == "plain":
        return [Process("plainpeer", [str(bin_dir / "bench-plainpeer"), f"--namespace={ns}",
                                      f"--workers={WRITE_CONCURRENCY}",
                                      f"--status_patch_json={STATUS_PATCH}"], env, run_dir)]
    if impl == "controller-runtime":
        return [Process("crpeer", [str(bin_dir / "bench-crpeer"), f"--namespace={ns}",
                                   f"--workers={WRITE_CONCURRENCY}",
                                   f"--status_patch_json={STATUS_PATCH}"], env, run_dir)]
    if impl == "kopf":
        return [Process("kopf", [str(venv_bin / "kopf"), "run", "--standalone", f"--namespace={ns}",
                                 str(PEERS / "kopf" / "handlers.py")], env, run_dir, cwd=run_dir)]
    sock = run_dir / "herald.sock"
    if len(str(sock)) > 100:  # a Unix socket path has at most 107 bytes
        sock = Path(tempfile.mkdtemp(prefix="herald-p1-")) / "h.sock"
    # Herald's defaults: no client-side rate limit, like controller-runtime's
    # default and Kopf's.
    sidecar = Process("herald", [str(bazel_bin / "server" / "herald"), f"--socket={sock}",
                                 f"--namespaces={ns}"], env, run_dir)
    # The handler is started once the socket is there: a gRPC client that
    # finds no socket backs off for a second before trying again, which would
    # time gRPC's reconnect policy rather than Herald.
    deadline = time.monotonic() + 30
    while not sock.exists() and sidecar.alive() and time.monotonic() < deadline:
        time.sleep(0.002)
    if impl == "herald-python":
        handler = Process("handler-python", [str(venv_bin / "herald"), "run",
                                             str(PEERS / "herald-python" / "handlers.py"),
                                             "--target", f"unix:{sock}"], env, run_dir, cwd=run_dir)
    elif impl == "herald-python-noevents":
        handler = Process("handler-python", [str(venv_bin / "python"),
                                             str(PEERS / "herald-python" / "run_without_events.py"),
                                             f"unix:{sock}"], env, run_dir, cwd=run_dir)
    else:
        handler = Process("handler-cc", [str(bazel_bin / "tests" / "bench" / "cc" / "bench_handler"),
                                         f"--target=unix://{sock}", f"--resource={PLURAL}",
                                         "--handler_id=bench", "--cause=create", "--credits=64",
                                         f"--status_patch_json={STATUS_PATCH}",
                                         f"--stats={run_dir / 'bench_handler.json'}"], env, run_dir)
    return [sidecar, handler]


def missing_parts(impl: str, ctx: dict) -> str | None:
    bin_dir, bazel_bin = Path(_ctx(ctx, "bin")), Path(_ctx(ctx, "bazel_bin"))
    venv_bin = Path(_ctx(ctx, "venv", "/nonexistent")) / "bin"
    need = {
        "plain": [bin_dir / "bench-plainpeer"],
        "controller-runtime": [bin_dir / "bench-crpeer"],
        "kopf": [venv_bin / "kopf"],
        "herald-python": [bazel_bin / "server" / "herald", venv_bin / "herald"],
        "herald-python-noevents": [bazel_bin / "server" / "herald", venv_bin / "herald"],
        "herald-cc": [bazel_bin / "server" / "herald", bazel_bin / "tests" / "bench" / "cc" / "bench_handler"],
    }[impl]
    gone = [str(p) for p in need if not p.exists()]
    return ", ".join(gone) if gone else None


VARIANTS = ("live", "backlog")
VARIANT_TEXT = {
    "live": "objects to done",
    "backlog": "objects to done, backlog (created before the implementation starts)",
}


def run_impl(impl: str, ctx, cluster: LocalCluster, n: int, timeout: float,
             round_no: int = 1, variant: str = "live") -> dict:
    """One implementation on a fresh namespace: the driver's report plus accounting.

    live: the implementation runs, a canary proves it is up, then the Widgets
    are created; the time runs from the start of the creation. backlog: the
    Widgets are created first, then the implementation is started; the time
    runs from its start (so it includes its start-up and initial listing).
    """
    ns = f"p1-{impl}-{variant}-r{round_no}"
    run_dir = Path(_ctx(ctx, "workdir")) / "p1" / f"round-{round_no}" / variant / impl
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    env = cluster.env()
    driver_cmd = [str(Path(_ctx(ctx, "bin")) / "bench-p1driver"), f"--namespace={ns}",
                  f"--count={n}", f"--create_workers={CREATE_WORKERS}", f"--timeout={int(timeout)}s"]
    create_namespace(cluster, ns)
    result: dict = {"impl": impl, "variant": variant, "namespace": ns, "logs": str(run_dir)}
    if variant == "backlog":
        creator = Process("p1driver-create", [*driver_cmd, "--phase=create",
                                               f"--out={run_dir / 'create.json'}"], env, run_dir)
        try:
            code = creator.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            creator.stop(timeout=1)
            code = None
        if code != 0:
            raise RuntimeError(f"creating the backlog failed ({code}): {creator.tail(10)}")
        created = json.loads((run_dir / "create.json").read_text())
        driver_cmd.append("--phase=wait")
    servers = server_pids(cluster)
    cpu0 = {k: cpu_seconds(p) for k, p in servers.items()}
    req0 = request_counts(cluster)
    start_ns = time.time_ns()
    procs = start_impl(impl, ctx, ns, run_dir, env)
    if variant == "backlog":
        driver_cmd.append(f"--start_unix_ns={start_ns}")
    try:
        driver = Process("p1driver", [*driver_cmd, f"--out={run_dir / 'driver.json'}"], env, run_dir)
        # Stop early when a process of the implementation dies.
        while driver.alive() and all(p.alive() for p in procs):
            time.sleep(0.05)
        for p in procs:
            if p.alive():
                p.sample()
        if driver.alive():
            driver.stop(timeout=1)
        code = driver.proc.returncode
        dead = [f"{p.name} exited with {p.proc.returncode}:\n{p.tail()}" for p in procs if not p.alive()]
        if dead or code not in (0, 3) or not (run_dir / "driver.json").exists():
            raise RuntimeError(f"p1driver ended with {code}: {driver.tail(10)}\n" + "\n".join(dead))
        result.update(json.loads((run_dir / "driver.json").read_text()))
    finally:
        # Handlers first, so that the sidecar has no stream to drain; all at once.
        for p in reversed(procs):
            if p.alive():
                p.proc.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            p.stop()
    if variant == "backlog":
        result["create_seconds"] = created["create_seconds"]
    req1 = request_counts(cluster)
    result["server_cpu_s"] = {k: cpu_seconds(p) - cpu0[k] for k, p in servers.items()}
    result["requests"] = {k: v - req0.get(k, 0.0) for k, v in req1.items() if v - req0.get(k, 0.0) > 0}
    result["procs"] = {p.name: {"cpu_s": p.cpu, "peak_rss_mb": p.rss} for p in procs}
    result["cpu_s"] = sum(p.cpu for p in procs)
    result["peak_rss_mb"] = sum(p.rss for p in procs)
    return result


# --- report -------------------------------------------------------------------------

def _objects(res: dict) -> int:
    # The live variant's canary is one more object handled in the same run.
    return res["count"] + (1 if res.get("variant", "live") == "live" else 0)


def _per_object(res: dict, key: str) -> float:
    return res["requests"].get(key, 0.0) / _objects(res)


def describe(res: dict) -> str:
    patches = _per_object(res, "PATCH widgets")
    others = sum(v for k, v in res["requests"].items()
                 if k.endswith(" widgets") and not k.startswith("PATCH")
                 and not k.startswith("POST")) / _objects(res)
    events = _per_object(res, "POST events")
    procs = ", ".join(f"{name} {p['cpu_s']:.1f} s CPU / {p['peak_rss_mb']:.0f} MB peak RSS"
                      for name, p in res["procs"].items())
    servers = ", ".join(f"{k} {v:.1f} s" for k, v in res["server_cpu_s"].items())
    rounds = ""
    if len(res.get("all_totals", [])) > 1:
        rounds = " (median of " + ", ".join(f"{t:.2f}" for t in res["all_totals"]) + " s)"
    if res.get("variant") == "backlog":
        creation = f"counted from its start, the {res['count']} objects existing before"
    else:
        creation = (f"the creation took {res['create_seconds']:.2f} s, the last object was done "
                    f"{res['total_seconds'] - res['create_seconds']:.2f} s after it")
    return (f"{LABELS[res['impl']]}: {res['total_seconds']:.2f} s{rounds}, {creation}, "
            f"{patches:.2f} PATCH/object, "
            f"{events:.2f} Event POST/object, {others:.2f} other widget requests/object; "
            f"{procs}; server CPU {servers}")


def plot(results: dict[str, dict[str, dict]], path: Path) -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    variants = [v for v in VARIANTS if results.get(v)]
    fig, axes = plt.subplots(1, len(variants), figsize=(6.5 * len(variants), 4.5), dpi=110, squeeze=False)
    for ax, variant in zip(axes[0], variants):
        res_v = results[variant]
        for impl in ORDER:
            res = res_v.get(impl)
            if not res or not res.get("done_seconds"):
                continue
            xs = [0.0] + res["done_seconds"]
            ax.step(xs, range(len(xs)), where="post", label=f"{LABELS[impl]} ({res['total_seconds']:.1f} s)")
        n = max(r["count"] for r in res_v.values())
        if variant == "live":
            ax.set_xlabel("seconds since the start of the creation")
            ax.set_title(f"P1: {n} Widgets created while the implementation runs", fontsize=10)
        else:
            ax.set_xlabel("seconds since the implementation was started")
            ax.set_title(f"P1 backlog: {n} Widgets exist, then the implementation starts", fontsize=10)
        ax.set_ylabel("objects with status.bench.done")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return str(path)


# The targets: Herald's time against the API server's floor (the plain
# client), and its processes' CPU and peak RSS against Kopf's and
# controller-runtime's (performance.md's P1: on one machine the API server,
# not the operator, bounds the time, so the peers are compared in what the
# operator itself costs).
TIME_TARGET = 1.05  # Herald + C++ handler's time over the plain client's
CPU_TARGET_KOPF = 0.25  # Herald + Python client's CPU over Kopf's
CPU_TARGET_CR = 0.6  # Herald + C++ handler's CPU over controller-runtime's
RSS_TARGET_KOPF = 0.35  # Herald + Python client's peak RSS over Kopf's


def _median(values: list[float]) -> float:
    v = sorted(values)
    return v[(len(v) - 1) // 2]


def _measure(res: dict | None, what: str) -> float | None:
    """An implementation's time, CPU or peak RSS: the median over its rounds
    (`all_<what>` when several ran), None when it did not finish."""
    if not res or res.get("timed_out"):
        return None
    key = {"time": "total_seconds", "cpu": "cpu_s", "rss": "peak_rss_mb"}[what]
    values = res.get(f"all_{key}") or [res[key]]
    return _median(values)


def _rounds_text(res: dict, what: str, unit: str) -> str:
    key = {"cpu": "cpu_s", "rss": "peak_rss_mb"}[what]
    values = res.get(f"all_{key}") or [res[key]]
    fmt = "{:.2f}" if what == "cpu" else "{:.0f}"
    return ", ".join(fmt.format(v) for v in values) + f" {unit}"


def rows_from(results: dict[str, dict], n: int, variant: str, common: str, plots: list[str],
              skipped: dict) -> list[dict]:
    """P1's rows for one variant: the time against the plain client, and CPU
    and peak RSS against Kopf and controller-runtime."""
    what = VARIANT_TEXT[variant]
    rows = []
    specs = [
        ("time", "herald-cc", "plain", f"{n} {what}: time, Herald + C++ handler vs a plain client",
         TIME_TARGET),
        ("cpu", "herald-python", "kopf", f"{n} {what}: CPU, Herald + Python client vs Kopf",
         CPU_TARGET_KOPF),
        ("cpu", "herald-cc", "controller-runtime",
         f"{n} {what}: CPU, Herald + C++ handler vs controller-runtime", CPU_TARGET_CR),
        ("rss", "herald-python", "kopf", f"{n} {what}: peak RSS, Herald + Python client vs Kopf",
         RSS_TARGET_KOPF),
    ]
    units = {"time": "s", "cpu": "s", "rss": "MB"}
    described: set[str] = set()
    for kind, h, b, case, target in specs:
        herald, base = _measure(results.get(h), kind), _measure(results.get(b), kind)
        row = {"scenario": "P1", "case": case,
               "herald": round(herald, 2) if herald is not None else None,
               "baseline": round(base, 2) if base is not None else None,
               "baseline_name": LABELS[b], "unit": units[kind], "plots": list(plots)}
        details = []
        # Each implementation's full description once per variant, in the
        # first row that names it.
        for i in (h, b):
            if i in results and i not in described:
                details.append(describe(results[i]))
                described.add(i)
        if kind == "time":
            py, floor = _measure(results.get("herald-python"), "time"), base
            if py is not None and floor:
                details.append(f"Herald + Python client took {py / floor:.2f}x the plain client's "
                               "time")
            for peer in ("kopf", "controller-runtime"):
                t = _measure(results.get(peer), "time")
                if t is not None and floor:
                    details.append(f"{LABELS[peer]} took {t / floor:.2f}x the plain client's time")
        else:
            noun = "CPU" if kind == "cpu" else "Peak RSS (the sum of the processes' VmHWM)"
            unit, fmt = ("s", "{:.2f}") if kind == "cpu" else ("MB", "{:.0f}")
            key = "cpu_s" if kind == "cpu" else "peak_rss_mb"
            for i in (h, b):
                if i in results:
                    per = ", ".join(f"{name} {fmt.format(p[key])} {unit}"
                                    for name, p in results[i]["procs"].items())
                    details.append(f"{noun} of {LABELS[i]} by round: "
                                   f"{_rounds_text(results[i], kind, unit)} (the median-time "
                                   f"round's processes: {per})")
        if h == "herald-python" and kind == "cpu" and "herald-python-noevents" in results:
            details.append("For comparison, " + describe(results["herald-python-noevents"]))
        for i in (h, b):
            if i in skipped:
                details.append(f"{LABELS[i]} not measured: {skipped[i]}")
            elif i in results and results[i].get("timed_out"):
                details.append(f"{LABELS[i]} timed out with {results[i]['done']} of {n} done")
        if herald is not None and base:
            ratio = herald / base
            row["ratio"] = round(ratio, 2)
            row["ratio_text"] = {"time": f"{ratio:.2f}x the plain client's time",
                                 "cpu": f"{ratio:.2f}x {LABELS[b]}'s CPU",
                                 "rss": f"{ratio:.2f}x {LABELS[b]}'s peak RSS"}[kind]
            row["met"] = ratio <= target
        else:
            row.update(ratio=None, ratio_text="not measured", met=False)
        row["target"] = {"time": f"<= {target}x the plain client",
                         "cpu": f"<= {target}x {LABELS[b].split(' ')[0]}'s",
                         "rss": f"<= {target}x {LABELS[b].split(' ')[0]}'s"}[kind]
        row["notes"] = " ".join([*(d + "." for d in details), common])
        rows.append(row)
    return rows


@contextmanager
def _cluster(ctx, name: str):
    # Ports are chosen free but only taken when the servers start: on a busy
    # machine another program may take one first, so a failed start is retried.
    for attempt in range(3):
        cluster = LocalCluster(workdir=Path(_ctx(ctx, "workdir")) / "p1" / f"cluster-{name}-{attempt}",
                               bin_dir=Path(_ctx(ctx, "bin")))
        try:
            cluster.start()
            break
        except ClusterError:
            shutil.rmtree(cluster.dir, ignore_errors=True)
            if attempt == 2:
                raise
    try:
        apply_crd(cluster, bool(_ctx(ctx, "p1_status_subresource", False)))
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.dir, ignore_errors=True)


def run(ctx) -> list[dict]:
    quick = bool(_ctx(ctx, "quick", False))
    n = int(_ctx(ctx, "p1_n", 0) or (50 if quick else 2000))
    only = _ctx(ctx, "p1_only", ORDER)
    variants = _ctx(ctx, "p1_variants", VARIANTS)
    # A fresh control plane per implementation in the full run, so that none
    # inherits another's objects, compactions or memory (its two variants run
    # one after the other on it, the first one's objects deleted); one shared
    # control plane per round (a fresh namespace each, emptied afterwards) in
    # the quick run.
    fresh = bool(_ctx(ctx, "p1_fresh_cluster", not quick))
    timeout = 120.0 if quick else 1200.0
    rounds = int(_ctx(ctx, "p1_rounds", 0) or (1 if quick else 3))
    log = _ctx(ctx, "log", lambda msg: print(msg, file=sys.stderr))
    skipped: dict[str, str] = {}

    impls = []
    for impl in ORDER:
        if impl not in only:
            continue
        gone = missing_parts(impl, ctx)
        if gone:
            skipped[impl] = f"missing {gone} (run tests/bench/setup.sh and bazel build)"
            log(f"P1: skipping {impl}: {skipped[impl]}")
        else:
            impls.append(impl)

    runs: dict[str, dict[str, list[dict]]] = {v: {} for v in variants}
    cluster_errors: dict[str, str] = {}

    def one(cluster, impl, round_no, variant):
        log(f"P1: {impl}, {variant}, {n} objects, round {round_no} of {rounds}")
        try:
            res = run_impl(impl, ctx, cluster, n, timeout, round_no, variant)
        except Exception as e:  # noqa: BLE001 - reported in the row
            skipped[impl] = f"failed ({variant}): {e}"
            log(f"P1: {impl} failed: {e}")
            return None
        runs[variant].setdefault(impl, []).append(res)
        log("P1: " + describe(res))
        return res

    def all_variants(cluster, impl, round_no):
        for variant in variants:
            if impl in skipped:
                return
            res = one(cluster, impl, round_no, variant)
            if res:
                delete_widgets(cluster, res["namespace"])

    # Rounds interleave the implementations, each round in a rotated order,
    # so that a slow spell of the shared machine does not hit one of them only.
    for round_no in range(1, rounds + 1):
        shift = (round_no - 1) % max(1, len(impls))
        order = [i for i in impls[shift:] + impls[:shift] if i not in skipped]
        if fresh:
            for impl in order:
                try:
                    with _cluster(ctx, impl) as cluster:
                        all_variants(cluster, impl, round_no)
                except ClusterError as e:
                    # Not the implementation's fault: it gets its next round.
                    cluster_errors[impl] = f"the control plane did not start: {e}"
                    log(f"P1: {impl}: the control plane did not start: {e}")
        elif order:
            with _cluster(ctx, f"shared-{round_no}") as cluster:
                for impl in order:
                    all_variants(cluster, impl, round_no)

    # Each implementation is represented by its median run.
    results: dict[str, dict[str, dict]] = {v: {} for v in variants}
    for variant, by_impl in runs.items():
        for impl, rs in by_impl.items():
            rs_sorted = sorted(rs, key=lambda r: (r.get("timed_out", False), r["total_seconds"]))
            med = dict(rs_sorted[(len(rs_sorted) - 1) // 2])
            med["all_totals"] = [r["total_seconds"] for r in rs]
            # CPU and peak RSS are taken as medians of their own over the
            # rounds (rows_from), not as the median-time round's.
            med["all_cpu_s"] = [r["cpu_s"] for r in rs if not r.get("timed_out")]
            med["all_peak_rss_mb"] = [r["peak_rss_mb"] for r in rs if not r.get("timed_out")]
            results[variant][impl] = med
    for impl, err in cluster_errors.items():
        if not any(impl in results[v] for v in variants):
            skipped.setdefault(impl, err)

    if any(runs.values()):
        (Path(_ctx(ctx, "workdir")) / "p1").mkdir(parents=True, exist_ok=True)
        (Path(_ctx(ctx, "workdir")) / "p1" / "results.json").write_text(json.dumps(runs, indent=1))
    plots = []
    if any(results.values()):
        # The harness says where the report's images go; standalone, the
        # work folder unless --img-dir says otherwise.
        img_dir = _ctx(ctx, "img_dir") or Path(_ctx(ctx, "workdir"))
        p = plot(results, Path(img_dir) / "p1-done.png")
        if p:
            try:
                plots.append(str(Path(p).relative_to(_ctx(ctx, "root"))))
            except ValueError:
                plots.append(p)
    common = (
        f"N={n} Widgets per implementation, "
        f"{'median of ' + str(rounds) + ' rounds' if rounds > 1 else 'one round'}, "
        "each on a fresh namespace"
        f"{' and a fresh control plane' if fresh else ''} (kube-apiserver v1.34.4 + etcd on loopback), "
        f"created by {CREATE_WORKERS} concurrent POSTs; the time runs until every Widget carries "
        "status.bench.done, seen by a watch. Live: from the start of the creation, after a canary "
        "object proved the implementation up. Backlog: the Widgets exist first; from the start of the "
        "implementation's processes (start-up and initial listing included). "
        f"{STATUS_TEXT if _ctx(ctx, 'p1_status_subresource', False) else NO_STATUS_TEXT} "
        "No client-side rate limits (Herald's default, controller-runtime's default, Kopf's default); "
        f"controller-runtime and the plain client use {WRITE_CONCURRENCY} workers, like Herald's writer pool; "
        "Kopf runs with its defaults. Event POSTs per object are counted in each implementation's "
        "line; \"posting no Events\" is the Herald Python client embedded with posting_level=None "
        "(peers/herald-python/run_without_events.py), shown for comparison. "
        "Requests per object include the live variant's canary and the initial list/watch. CPU and "
        "RSS are each implementation's processes only (for Herald: sidecar plus handler process); "
        "server CPU is kube-apiserver's and etcd's during the run."
    )
    rows = []
    for variant in variants:
        rows += rows_from(results[variant], n, variant, common if variant == variants[-1] else
                          "Setup and method: see the last P1 row.", plots, skipped)
    return rows


NO_STATUS_TEXT = (
    "The CRD has no status subresource, so every implementation can finish an object with one "
    "write (Herald's merge PATCH carries its diff-base annotation and the status together; "
    "with a subresource Herald writes a second PATCH to /status while controller-runtime writes "
    "only the status, which would compare different amounts of work).")
STATUS_TEXT = (
    "The CRD has a status subresource, as k8s/crd.yaml's KopfExample has: a merge PATCH of the "
    "object ignores `status`, so each implementation writes the status to /status (Herald: its "
    "diff-base annotation to the object, then the status; Kopf likewise).")


def _opt_bazel_bin() -> Path:
    """bazel-bin of the --config=release (-c opt) build when it holds the sidecar (what the
    harness measures), else the checkout's bazel-bin link."""
    try:
        out = subprocess.run(["bazel", "info", "--config=release", "bazel-bin"], cwd=ROOT, capture_output=True,
                             text=True, timeout=120).stdout.strip()
        if out and (Path(out) / "server" / "herald").exists():
            return Path(out)
    except (OSError, subprocess.TimeoutExpired):
        pass
    return ROOT / "bazel-bin"


def default_ctx(quick: bool) -> dict:
    cache = Path(os.environ.get("HERALD_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or
                                                       Path.home() / ".cache") / "herald")
    return {
        "quick": quick, "root": str(ROOT), "bin": str(herald_bin()),
        "bazel_bin": None,
        "workdir": tempfile.mkdtemp(prefix="herald-p1-"),
        "venv": os.environ.get("HERALD_BENCH_VENV") or str(cache / "bench-venv"),
        "log": lambda msg: print(f"[p1] {msg}", file=sys.stderr, flush=True),
    }


def run_standalone(name: str, ctx, run, keep: bool) -> int:
    """A scenario run from its own command line: its rows printed as JSON, its
    work folder removed unless `keep`."""
    try:
        rows = run(ctx)
    finally:
        if keep:
            print(f"[{name}] logs in {ctx['workdir']}", file=sys.stderr)
        else:
            shutil.rmtree(ctx["workdir"], ignore_errors=True)
    for row in rows:
        print(json.dumps(row, indent=1))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="P1: end to end on the real local API server.")
    parser.add_argument("--quick", action="store_true", help="50 objects, one shared control plane")
    parser.add_argument("--n", type=int, help="objects per implementation")
    parser.add_argument("--only", help="comma-separated: " + ",".join(ORDER))
    parser.add_argument("--shared-cluster", action="store_true", help="one control plane for all")
    parser.add_argument("--rounds", type=int, help="runs per implementation (median taken)")
    parser.add_argument("--variants", help="comma-separated: " + ",".join(VARIANTS))
    parser.add_argument("--bazel-bin", help="where the sidecar and bench_handler are "
                        "(default: the -c opt bazel-bin if built, else ./bazel-bin)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, plot)")
    parser.add_argument("--status-subresource", action="store_true",
                        help="give the Widget CRD a status subresource (what P1S measures)")
    parser.add_argument("--img-dir", help="write the plot here (default: the work folder)")
    args = parser.parse_args()
    ctx = default_ctx(args.quick)
    # Plots need matplotlib from the benchmark virtualenv: run under its Python.
    venv_python = Path(ctx["venv"]) / "bin" / "python"
    if venv_python.exists() and Path(sys.prefix).resolve() != Path(ctx["venv"]).resolve():
        os.execv(str(venv_python), [str(venv_python), __file__, *sys.argv[1:]])
    ctx["bazel_bin"] = args.bazel_bin or str(_opt_bazel_bin())
    ctx["log"](f"sidecar and bench_handler from {ctx['bazel_bin']}")
    if args.n:
        ctx["p1_n"] = args.n
    if args.only:
        ctx["p1_only"] = args.only.split(",")
    if args.img_dir:
        ctx["img_dir"] = args.img_dir
    if args.variants:
        ctx["p1_variants"] = args.variants.split(",")
    if args.rounds:
        ctx["p1_rounds"] = args.rounds
    if args.shared_cluster:
        ctx["p1_fresh_cluster"] = False
    if args.status_subresource:
        ctx["p1_status_subresource"] = True
    return run_standalone("p1", ctx, run, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
