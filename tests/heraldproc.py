"""Helpers to run Herald's binaries in tests and read what they log."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BAZEL_BIN = ROOT / "bazel-bin"
EVENT_RE = re.compile(
    r"\[event\] (?P<type>ADDED|MODIFIED|DELETED) (?P<resource>\S+) (?P<key>\S+) "
    r"rv=(?P<rv>\d+)(?P<listing> \(listing\))?")


def wait_for(fn, timeout: float = 30.0, what: str = "condition", describe=None):
    """Calls `fn` until it returns something true (exceptions count as not
    yet); fails after `timeout` seconds with the last result, plus
    `describe()` when given."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(0.1)
    extra = ("\n" + describe()) if describe else ""
    raise AssertionError(f"{what} not met within {timeout}s (last: {last!r}){extra}")


def build(*targets: str) -> None:
    """Builds Bazel targets (fast when `bazel test //...` already ran)."""
    subprocess.run(["bazel", "build", "--noshow_progress", *targets], cwd=ROOT,
                   check=True, capture_output=True, timeout=1200)


class Proc:
    """A running binary whose stderr and stdout lines are collected."""

    def __init__(self, args: list[str], env: dict, sigint_ignored: bool = False):
        """`sigint_ignored`: start the binary with SIGINT ignored, as a job
        started in the background of a non-interactive shell (a CI runner, a
        supervisor) is."""
        self.args = args
        preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, preexec_fn=preexec)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 30.0, start: int = 0) -> re.Match:
        """Waits until a line (from index `start`) matches `pattern`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(
                        f"no line matching {pattern!r} within {timeout}s; log:\n"
                        + "\n".join(self.lines[-40:]))
                self._cond.wait(min(left, 0.2))

    def events(self) -> list[tuple[str, str, str, bool]]:
        """(type, namespace/name, rv, from_listing) of each event logged."""
        with self._cond:
            lines = list(self.lines)
        out = []
        for line in lines:
            m = EVENT_RE.search(line)
            if m:
                out.append((m["type"], m["key"], m["rv"], bool(m["listing"])))
        return out

    def mark(self) -> int:
        with self._cond:
            return len(self.lines)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("did not stop within %ss of SIGTERM" % timeout)


def herald(cluster, *args: str, env: dict | None = None) -> Proc:
    """The sidecar, logging every watch event; its own socket unless given."""
    import tempfile
    if not any(a.startswith("--socket") for a in args):
        args = (f"--socket={tempfile.mkdtemp(prefix='herald-')}/herald.sock", *args)
    return Proc([str(BAZEL_BIN / "server" / "herald"), "--log_events", *args],
                env=env or cluster.env())


def kube_tool(cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([str(BAZEL_BIN / "tests" / "integration" / "kube_tool"), *args],
                         env=cluster.env(), capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        raise AssertionError(f"kube_tool {args} failed: {res.stderr}")
    return res


def kubectl(cluster, *args: str, input: str | None = None, check: bool = True):
    return subprocess.run(["kubectl", *args], env=cluster.env(), capture_output=True,
                          text=True, check=check, timeout=60, input=input)


def apply_crd(cluster, group: str, kind: str, plural: str, scope: str = "Namespaced",
              wait: bool = True) -> None:
    """Applies a minimal CRD with a status subresource."""
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group, "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }],
        },
    }
    kubectl(cluster, "apply", "-f", "-", input=json.dumps(crd))
    if wait:
        kubectl(cluster, "wait", "--for=condition=Established", "--timeout=60s",
                f"crd/{plural}.{group}")


def get_object(cluster, resource: str, name: str, namespace: str = "default") -> dict:
    """One object as kubectl shows it; `resource` is "plural.group"."""
    return json.loads(kubectl(cluster, "get", resource, name, "-n", namespace,
                              "-o", "json").stdout)


def handler_specs(resource: str, *specs: dict) -> list[dict]:
    """Handler specs for tests/handlerclient.py, for `resource` unless a spec
    names another."""
    return [{"resource": resource, **s} for s in specs]


def apply_object(cluster, group: str, kind: str, name: str, namespace: str = "default",
                 spec: dict | None = None) -> None:
    obj = {"apiVersion": f"{group}/v1", "kind": kind,
           "metadata": {"name": name, "namespace": namespace}, "spec": spec or {}}
    kubectl(cluster, "apply", "-f", "-", input=json.dumps(obj))


def sidecar(cluster, socket_path, *args: str) -> Proc:
    """The sidecar serving handler processes on a Unix socket."""
    return herald(cluster, f"--socket={socket_path}", *args)


class HandlerProcess(Proc):
    """tests/handlerclient.py running a script; its lines are JSON."""

    def __init__(self, socket_path, script: dict, tmp_path):
        import sys
        path = tmp_path / f"script-{time.monotonic_ns()}.json"
        path.write_text(json.dumps(script))
        super().__init__([sys.executable, str(ROOT / "tests" / "handlerclient.py"),
                          "--target", f"unix:{socket_path}", "--script", str(path)],
                         env=dict(os.environ))

    def records(self, event: str | None = None) -> list[dict]:
        out = []
        with self._cond:
            lines = list(self.lines)
        for line in lines:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if event is None or r.get("event") == event:
                out.append(r)
        return out

    def wait_record(self, timeout: float = 30.0, **match) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self.records():
                if all(r.get(k) == v for k, v in match.items()):
                    return r
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no record {match} within {timeout}s; got:\n"
                             + "\n".join(self.lines[-30:]))

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
