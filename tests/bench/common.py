"""Shared pieces of the benchmark scenarios: the run context, processes that
die with the harness, the synthetic watch source, the sidecar, bench_handler
and grpc_echo, and the row format of tests/bench/README.md."""

from __future__ import annotations

import ctypes
import dataclasses
import json
import math
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Callable

RESOURCE = "widgets.bench.herald.dev"
_PR_SET_PDEATHSIG = 1


@dataclasses.dataclass
class Context:
    quick: bool
    root: Path
    bin: Path
    bazel_bin: Path
    workdir: Path
    venv: Path | None
    log: Callable[[str], None] = print
    # Filled by the harness: what the sidecar's --help lists, and where
    # plots go.
    sidecar_flags: set = dataclasses.field(default_factory=set)
    img_dir: Path | None = None

    def tool(self, *parts: str) -> Path:
        return self.bazel_bin.joinpath(*parts)

    def scratch(self, name: str) -> Path:
        d = self.workdir / name
        d.mkdir(parents=True, exist_ok=True)
        return d


# --- rows -----------------------------------------------------------------------

def row(scenario: str, case: str, herald: float | None, baseline: float | None,
        baseline_name: str, unit: str, target: str, met: bool | None,
        notes: str = "", ratio: float | None = None, ratio_text: str | None = None,
        plots: list[str] | None = None) -> dict:
    """A result row; the ratio is herald / baseline unless given."""
    if ratio is None and herald is not None and baseline:
        ratio = herald / baseline
    if ratio_text is None and ratio is not None:
        ratio_text = f"{ratio:.2f}x the baseline"
    r = {"scenario": scenario, "case": case, "herald": herald, "baseline": baseline,
         "baseline_name": baseline_name, "unit": unit, "ratio": ratio,
         "ratio_text": ratio_text or "", "target": target, "met": met, "notes": notes}
    if plots:
        r["plots"] = plots
    return r


def failed_row(scenario: str, case: str, target: str, error: str) -> dict:
    return row(scenario, case, None, None, "", "", target, None,
               notes=f"not measured: {error}")


def percentile(samples: list[float], p: float) -> float:
    if not samples:
        return math.nan
    s = sorted(samples)
    k = (len(s) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# --- processes ------------------------------------------------------------------

def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.setpgrp()


class Proc:
    """A child process that dies with us; its output lines are kept, each
    with the monotonic time it was read, and copied to a log file."""

    def __init__(self, args: list[str], log_path: Path, env: dict | None = None,
                 name: str = ""):
        self.args = [str(a) for a in args]
        self.name = name or Path(self.args[0]).name
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     env=env or os.environ.copy(),
                                     preexec_fn=_die_with_parent)
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump(self) -> None:
        for line in self.proc.stdout:
            t = time.monotonic()
            self._log.write(line)
            with self._cond:
                self.lines.append((t, line.rstrip("\n")))
                self._cond.notify_all()
        self._log.flush()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 60.0, count: int = 1) -> tuple[float, re.Match]:
        """Waits for the count-th line matching pattern; returns its read time
        and match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                seen = 0
                for t, line in self.lines:
                    m = rx.search(line)
                    if m:
                        seen += 1
                        if seen == count:
                            return t, m
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    tail = "\n".join(l for _, l in self.lines[-30:])
                    raise RuntimeError(f"{self.name}: no line matching {pattern!r} "
                                       f"(#{count}) within {timeout}s; log tail:\n{tail}")
                self._cond.wait(min(left, 0.2))

    def count(self, pattern: str) -> int:
        rx = re.compile(pattern)
        with self._cond:
            return sum(1 for _, l in self.lines if rx.search(l))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (and the rest of /proc/pid/status's kB fields) in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            v = v.strip()
            if v.endswith(" kB"):
                out[k] = int(v[:-3]) * 1024
    return out


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Processes:
    """Everything a scenario started, stopped in reverse order at the end."""

    def __init__(self):
        self.procs: list[Proc] = []

    def add(self, p: Proc) -> Proc:
        self.procs.append(p)
        return p

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            try:
                p.stop(timeout=10)
            except Exception:  # noqa: BLE001 - best effort at the end
                p.kill()
        self.procs.clear()


# --- the synthetic watch source ------------------------------------------------------

class Synthetic:
    """herald-synthetic on a free loopback port."""

    def __init__(self, ctx: Context, procs: Processes, name: str = "synthetic",
                 bookmark_interval: str = "5s"):
        d = ctx.scratch(name)
        port_file = d / "port"
        port_file.unlink(missing_ok=True)
        self.proc = procs.add(Proc([ctx.bin / "herald-synthetic", "serve",
                                    f"--port-file={port_file}",
                                    f"--bookmark-interval={bookmark_interval}"],
                                   d / "synthetic.log", name="herald-synthetic"))
        deadline = time.monotonic() + 20
        while not port_file.exists():
            if time.monotonic() > deadline or not self.proc.alive():
                raise RuntimeError("herald-synthetic did not start: " + d.joinpath("synthetic.log").read_text())
            time.sleep(0.02)
        self.port = int(port_file.read_text())
        self.url = f"http://127.0.0.1:{self.port}"
        self.kubeconfig = d / "kubeconfig"
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "synthetic", "cluster": {"server": self.url}}],
            "users": [{"name": "bench", "user": {"token": "bench"}}],
            "contexts": [{"name": "synthetic", "context": {"cluster": "synthetic", "user": "bench"}}],
            "current-context": "synthetic",
        }))

    def _call(self, method: str, path: str, timeout: float = 600) -> dict:
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"{}")

    def create(self, n: int, size: int, shards: int = 1) -> int:
        return self._call("POST", f"/control/create?n={n}&size={size}&shards={shards}")["objects"]

    def stream(self, *, rate: float = 0, count: int = 0, seconds: float = 0,
               shard: int = -1, wait: bool = False) -> dict:
        q = f"rate={rate}&count={count}&seconds={seconds}&shard={shard}"
        if wait:
            q += "&wait=1"
        return self._call("POST", "/control/stream?" + q)

    def stop_stream(self) -> None:
        self._call("POST", "/control/stop")

    def gone(self, change_pct: float) -> int:
        return self._call("POST", f"/control/gone?change_pct={change_pct}")["changed"]

    def stats(self) -> dict:
        return self._call("GET", "/control/stats")

    def wait_stream_done(self, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            st = self.stats()
            if not st["stream_running"]:
                return st
            if time.monotonic() > deadline:
                raise RuntimeError("the synthetic stream did not finish")
            time.sleep(0.2)


# --- the sidecar ----------------------------------------------------------------------

def sidecar_flags(ctx: Context) -> set[str]:
    """The flags `herald --helpfull` lists (to detect optional ones)."""
    res = subprocess.run([str(ctx.tool("server", "herald")), "--helpfull"], capture_output=True,
                         text=True, timeout=30)
    return set(re.findall(r"^\s+--([a-z_]+) \(", res.stdout + res.stderr, re.M))


class Sidecar:
    """bazel-bin/server/herald against a kubeconfig, on a Unix socket in the
    workdir."""

    def __init__(self, ctx: Context, procs: Processes, kubeconfig: Path, *flags: str,
                 name: str = "sidecar"):
        d = ctx.scratch(name)
        self.socket = d / "herald.sock"
        self.target = f"unix://{self.socket}"
        args = [ctx.tool("server", "herald"), f"--kubeconfig={kubeconfig}",
                f"--socket={self.socket}", "--log_level=info", *flags]
        self.t_start = time.monotonic()
        self.proc = procs.add(Proc(args, d / "herald.log", name="herald"))
        self._channel = None
        self._stub = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_socket(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            if time.monotonic() > deadline or not self.proc.alive():
                tail = "\n".join(l for _, l in self.proc.lines[-20:])
                raise RuntimeError(f"the sidecar did not open its socket:\n{tail}")
            time.sleep(0.01)

    def wait_listed(self, count: int = 1, timeout: float = 120) -> float:
        """Waits for the count-th 'listed N object(s)' log line; returns the
        monotonic time it was read."""
        t, _ = self.proc.wait_for(r"listed \d+ object\(s\)", timeout=timeout, count=count)
        return t

    def rss(self) -> int:
        return proc_status(self.pid)["VmRSS"]

    def hwm(self) -> int:
        return proc_status(self.pid)["VmHWM"]

    # Inspection (herald.v1.InspectionService) over the same socket.
    def _inspection(self):
        if self._stub is None:
            import grpc
            from herald.v1 import inspection_pb2_grpc
            self._channel = grpc.insecure_channel(self.target)
            self._stub = inspection_pb2_grpc.InspectionServiceStub(self._channel)
        return self._stub

    def handlers(self) -> dict[str, dict]:
        from herald.v1 import inspection_pb2
        resp = self._inspection().ListHandlers(inspection_pb2.ListHandlersRequest(), timeout=10)
        return {h.handler_id: {"deliveries": h.deliveries, "successes": h.successes,
                               "process_count": h.process_count}
                for h in resp.handlers}

    def resources(self) -> list[dict]:
        from herald.v1 import inspection_pb2
        resp = self._inspection().ListResources(inspection_pb2.ListResourcesRequest(), timeout=10)
        return [{"name": r.resource.plural if hasattr(r.resource, "plural") else "",
                 "state": r.state, "object_count": r.object_count} for r in resp.resources]

    def processes(self) -> list[dict]:
        from herald.v1 import inspection_pb2
        resp = self._inspection().ListProcesses(inspection_pb2.ListProcessesRequest(), timeout=10)
        return [{"process_name": p.process_name, "handler_ids": list(p.handler_ids),
                 "in_flight": len(p.in_flight_delivery_ids), "credits": p.credits}
                for p in resp.processes]

    def queues(self) -> dict | None:
        """Objects with work (ListQueues): how many, the raw events queued in
        all and for the busiest object; None when the sidecar has no
        ListQueues."""
        try:
            from herald.v1 import inspection_pb2
            resp = self._inspection().ListQueues(inspection_pb2.ListQueuesRequest(limit=100000),
                                                 timeout=10)
        except Exception:  # noqa: BLE001 - an older sidecar or client
            return None
        queued = [q.queued_events for q in resp.queues]
        return {"objects": resp.total, "queued_events": sum(queued),
                "max_per_object": max(queued, default=0)}

    def object_count(self) -> int:
        return sum(r["object_count"] for r in self.resources())

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
            self._stub = None


def wait_settled(side: "Sidecar", handler_ids: list[str], timeout: float = 120,
                 quiet: float = 1.0) -> dict[str, dict]:
    """Waits until every delivery to these handlers is answered and none came
    for `quiet` seconds (the sidecar merges the queued events of an object, so
    the count of deliveries is not known in advance); returns the counters."""
    last, since = None, time.monotonic()
    deadline = time.monotonic() + timeout
    while True:
        hs = side.handlers()
        now = {h: (hs.get(h, {}).get("deliveries", 0), hs.get(h, {}).get("successes", 0))
               for h in handler_ids}
        if now != last:
            last, since = now, time.monotonic()
        elif all(d == s for d, s in now.values()) and time.monotonic() - since >= quiet:
            return hs
        if time.monotonic() > deadline:
            raise RuntimeError(f"deliveries to {handler_ids} did not settle: {now}")
        time.sleep(0.2)


def wait_until(fn, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(interval)
    raise RuntimeError(f"{what}: not within {timeout}s (last: {last!r})")


# --- bench_handler and grpc_echo --------------------------------------------------------

class Handler:
    """One bench_handler process (see tests/bench/README.md)."""

    def __init__(self, ctx: Context, procs: Processes, target: str, *, handler_id: str = "bench",
                 cause: str = "event", credits: int = 64, label: str | None = None,
                 stall: bool = False, exit_after: int = 0, name: str = "handler",
                 extra: tuple[str, ...] = ()):
        d = ctx.scratch(name)
        self.stats_path = d / "stats.json"
        self.stats_path.unlink(missing_ok=True)
        args = [ctx.tool("tests", "bench", "cc", "bench_handler"), f"--target={target}",
                f"--resource={RESOURCE}", f"--handler_id={handler_id}", f"--cause={cause}",
                f"--credits={credits}", f"--stats={self.stats_path}", *extra]
        if label:
            args.append(f"--label={label}")
        if stall:
            args.append("--stall")
        if exit_after:
            args.append(f"--exit_after={exit_after}")
        self.proc = procs.add(Proc(args, d / "handler.log", name=name))

    def wait_registered(self, timeout: float = 60) -> None:
        self.proc.wait_for(r"registered", timeout=timeout)

    def finish(self, timeout: float = 60) -> dict:
        """Stops it (SIGTERM) unless it exited by itself, and reads its stats."""
        if self.proc.alive():
            self.proc.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.proc.stop()
        if not self.stats_path.exists():
            tail = "\n".join(l for _, l in self.proc.lines[-20:])
            raise RuntimeError(f"bench_handler wrote no stats; log tail:\n{tail}")
        return json.loads(self.stats_path.read_text())

    def wait_exit(self, timeout: float) -> dict:
        try:
            self.proc.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        return self.finish()


def grpc_echo(ctx: Context, procs: Processes, mode: str, size: int, count: int,
              inflight: int = 64, name: str = "echo") -> dict:
    """Runs a grpc_echo server and one client run; returns the client's stats,
    with the server's CPU seconds during the run as `server_cpu_s`."""
    d = ctx.scratch(name)
    sock = d / "echo.sock"
    sock.unlink(missing_ok=True)
    exe = ctx.tool("tests", "bench", "cc", "grpc_echo")
    server = procs.add(Proc([exe, "server", f"--socket={sock}"], d / "server.log", name="grpc_echo server"))
    wait_until(sock.exists, 20, "grpc_echo server socket", interval=0.01)
    stats = d / f"{mode}.json"
    stats.unlink(missing_ok=True)
    cpu0 = cpu_seconds(server.pid)
    res = subprocess.run([str(exe), "client", f"--target=unix://{sock}", f"--mode={mode}",
                          f"--size={size}", f"--count={count}", f"--inflight={inflight}",
                          f"--stats={stats}"], capture_output=True, text=True, timeout=600,
                         preexec_fn=_die_with_parent)
    server_cpu = cpu_seconds(server.pid) if server.alive() else float("nan")
    server.stop()
    if res.returncode != 0 or not stats.exists():
        raise RuntimeError(f"grpc_echo client failed ({res.returncode}): {res.stderr[-2000:]}")
    return dict(json.loads(stats.read_text()), server_cpu_s=server_cpu - cpu0)


def need(ctx: Context, *parts: str) -> Path:
    p = ctx.tool(*parts)
    if not p.exists():
        raise FileNotFoundError(f"{p} is not built")
    return p


def mb(n: float) -> float:
    return n / (1 << 20)


def have(cmd: str) -> bool:
    return shutil.which(cmd) is not None
