"""Every Python example against the real local control plane, through the real
sidecar and the real `herald` client."""

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from heraldproc import ROOT, Proc, kubectl, sidecar, wait_for

pytestmark = pytest.mark.usefixtures("binaries")
EXAMPLES = ROOT / "clients" / "python" / "examples"
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def crd(cluster):
    kubectl(cluster, "apply", "-f", str(ROOT / "k8s" / "crd.yaml"))
    kubectl(cluster, "wait", "--for=condition=Established", "--timeout=60s",
            "crd/kopfexamples.kopf.dev")
    return cluster


class Setup:
    """A namespace of its own, a sidecar scoped to it, and the example running."""

    def __init__(self, cluster, tmp_path, name, sidecar_args=()):
        self.cluster = cluster
        self.sidecar_args = list(sidecar_args)
        self.ns = ("ex-" + name.lower().replace("_", "-")[:40]).rstrip("-")
        kubectl(cluster, "create", "namespace", self.ns, check=False)
        self.sock = tmp_path / "herald.sock"
        self.sidecar = None
        self.client = None
        self.start_sidecar()

    def start_sidecar(self):
        self.sidecar = sidecar(self.cluster, self.sock, f"--namespaces={self.ns}",
                               *self.sidecar_args)

    def restart_sidecar(self):
        assert self.sidecar.stop() == 0
        self.start_sidecar()

    def run(self, example, *extra, path=None, sigint_ignored=False):
        path = path or EXAMPLES / example
        target = f"unix:{self.sock}"
        if (path / "handlers.py").exists():
            args = [str(VENV_BIN / "herald"), "run", str(path / "handlers.py"),
                    "--target", target, "--stop-wait", "5", *extra]
        else:
            args = [str(VENV_BIN / "python"), str(path / "app.py")]
        env = dict(self.cluster.env(), HERALD_TARGET=target, PYTHONUNBUFFERED="1")
        self.client = Proc(args, env=env, sigint_ignored=sigint_ignored)
        self.client.wait_for(r"registered \d+ handler\(s\)|the operator is ready", timeout=60)
        return self.client

    def apply(self, name="kopf-example-1", spec=None, labels=None, annotations=None):
        obj = {"apiVersion": "kopf.dev/v1", "kind": "KopfExample",
               "metadata": {"name": name, "namespace": self.ns,
                            "labels": labels or {}, "annotations": annotations or {}},
               "spec": spec if spec is not None else {"field": "value", "duration": "1m"}}
        kubectl(self.cluster, "apply", "-f", "-", input=json.dumps(obj))

    def patch(self, name, patch):
        kubectl(self.cluster, "patch", "kopfexample", name, "-n", self.ns, "--type=merge",
                "-p", json.dumps(patch))

    def get(self, name="kopf-example-1"):
        return json.loads(kubectl(self.cluster, "get", "kopfexample", name, "-n", self.ns,
                                  "-o", "json").stdout)

    def wait(self, fn, timeout=60, what="condition"):
        return wait_for(fn, timeout=timeout, what=what, describe=lambda: (
            "client:\n" + "\n".join(self.client.lines[-30:]) +
            "\nsidecar:\n" + "\n".join(self.sidecar.lines[-30:])))

    def status(self, key, name="kopf-example-1", timeout=60):
        return self.wait(lambda: self.get(name).get("status", {}).get(key),
                         timeout=timeout, what=f"status.{key} of {name}")

    def successes(self):
        out = collections.Counter()
        for line in self.client.lines:
            m = re.search(r"\[(\S+)\] handler (\S+) succeeded", line)
            if m:
                out[(m[1], m[2])] += 1
        return out

    def herald_annotations(self, name="kopf-example-1"):
        ann = self.get(name)["metadata"].get("annotations", {})
        return {k: v for k, v in ann.items() if k.startswith("herald.dev/")}

    def close(self):
        if self.client and self.client.proc.poll() is None:
            self.client.proc.send_signal(signal.SIGINT)
            try:
                self.client.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.client.proc.kill()
        if self.sidecar:
            self.sidecar.stop()


@pytest.fixture
def ex(crd, tmp_path, request):
    marker = request.node.get_closest_marker("sidecar_args")
    s = Setup(crd, tmp_path, request.node.name.replace("test_", ""),
              marker.args if marker else ())
    yield s
    s.close()


def grpcurl(sock, method, body=None):
    args = ["grpcurl", "-plaintext"] + (["-d", json.dumps(body)] if body is not None else [])
    out = subprocess.run(args + [f"unix://{sock}", f"herald.v1.InspectionService/{method}"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_01_minimal(ex):
    c = ex.run("01-minimal")
    ex.apply()
    assert ex.status("create_fn") == {"message": f"hello {ex.ns}/kopf-example-1"}
    c.wait_for(rf"\[{ex.ns}/kopf-example-1\] A handler is called with body")
    obj = ex.get()
    assert "finalizers" not in obj["metadata"]
    ann = ex.wait(lambda: ex.herald_annotations() if "herald.dev/last-handled-configuration"
                  in ex.herald_annotations() else None, what="diff-base")
    assert set(ann) == {"herald.dev/last-handled-configuration", "herald.dev/kopf-managed"}
    events = json.loads(kubectl(ex.cluster, "get", "events", "-n", ex.ns, "-o", "json").stdout)
    assert any("A handler is called with body" in e["message"] for e in events["items"])
    assert ex.successes() == {(f"{ex.ns}/kopf-example-1", "create_fn"): 1}


def test_02_errors(ex):
    c = ex.run("02-errors")
    ex.apply()
    assert ex.status("eventually") == {"attempts": 3}
    ex.wait(lambda: "herald.dev/last-handled-configuration" in ex.herald_annotations(),
            what="the cause done")
    assert set(ex.herald_annotations()) == {"herald.dev/last-handled-configuration",
                                            "herald.dev/kopf-managed"}
    assert "never" not in ex.get().get("status", {})
    assert len([l for l in c.lines if "failed temporarily" in l]) == 2
    assert len([l for l in c.lines if "handler never failed permanently" in l]) == 1


def test_03_events(ex):
    c = ex.run("03-events")
    ex.apply()
    c.wait_for(r"ADDED kopf-example-1: event #1")
    ex.patch("kopf-example-1", {"spec": {"field": "changed"}})
    c.wait_for(r"MODIFIED kopf-example-1: event #2")
    kubectl(ex.cluster, "delete", "kopfexample", "kopf-example-1", "-n", ex.ns)
    c.wait_for(r"DELETED kopf-example-1: event #3")


def test_04_all_causes_with_restarts(ex):
    c = ex.run("04-all-causes")
    ex.apply()
    assert ex.status("create_fn") == {"created": True}
    assert ex.get()["metadata"]["finalizers"] == ["herald.dev/finalizer"]
    # The handler process restarts mid-flow.
    c.proc.send_signal(signal.SIGTERM)
    assert c.proc.wait(timeout=20) == 0
    ex.patch("kopf-example-1", {"spec": {"field": "changed"}})
    c2 = ex.run("04-all-causes")
    assert ex.status("update_fn") == {"changes": 1}
    # The sidecar restarts mid-flow: the object existed before, so resume.
    ex.restart_sidecar()
    c2.wait_for(r"resuming kopf-example-1", timeout=60)
    kubectl(ex.cluster, "delete", "kopfexample", "kopf-example-1", "-n", ex.ns,
            "--wait=true", "--timeout=60s")
    c2.wait_for(r"deleted kopf-example-1")
    key = f"{ex.ns}/kopf-example-1"
    total = collections.Counter()
    for proc in (c, c2):
        for line in proc.lines:
            m = re.search(r"\[(\S+)\] handler (\S+) succeeded", line)
            if m:
                total[(m[1], m[2])] += 1
    assert total == {(key, "create_fn"): 1, (key, "update_fn"): 1, (key, "resume_fn"): 1,
                     (key, "delete_fn"): 1}, total


def test_05_field_filters(ex):
    ex.run("05-field-filters")
    ex.apply(spec={"field": "value", "items": ["a"]})
    # Results are merged into status: a None is an absent field there.
    assert ex.status("field_changed/spec.field") == {"new": "value"}
    ex.patch("kopf-example-1", {"spec": {"mode": "fast"}})
    assert ex.status("became_fast/spec.mode") == "now fast"
    ex.patch("kopf-example-1", {"spec": {"items": ["a", "b"]}})
    assert ex.status("items_changed/spec.items") == {"count": 2}


def test_06_label_filters(ex):
    ex.run("06-label-filters")
    ex.apply("matching", labels={"somelabel": "somevalue", "team": "blue"})
    ex.apply("plain", spec={"duration": "5m"})
    assert ex.status("labelled", "matching") == "matched somelabel=somevalue"
    assert ex.status("team_objects", "matching") == "team blue"
    assert ex.status("one_minute", "matching") == "duration is 1m"
    time.sleep(2)
    plain = ex.get("plain")
    # `one_minute` is registered for every object; its when= said no.
    assert "status" not in plain or not plain["status"]
    assert "finalizers" not in plain["metadata"]


def test_07_embedded(ex):
    # Started as a background job of a script is (SIGINT ignored): the app's
    # own signal handlers still stop it on Ctrl+C.
    app = ex.run("07-embedded", sigint_ignored=True)
    ex.apply()
    assert ex.status("create_fn") == {"embedded": True}
    app.wait_for(r"app: objects seen so far: \['kopf-example-1'\]")
    app.proc.send_signal(signal.SIGINT)
    assert app.proc.wait(timeout=20) == 0
    assert any("app: stopped" in line for line in app.lines)


def test_08_memos(ex):
    ex.run("08-memos")
    ex.apply()
    assert ex.status("create_fn") == "memos set"
    ex.patch("kopf-example-1", {"spec": {"field": "changed"}})
    assert ex.status("update_fn") == {"generation": 2}


def test_09_sync_executor(ex):
    c = ex.run("09-sync-executor")
    ex.apply()
    assert len(ex.status("sync_fn")["checksum"]) == 16
    ex.patch("kopf-example-1", {"spec": {"field": "changed"}})
    assert len(ex.status("async_fn")["checksum"]) == 16
    c.wait_for(r"answered for kopf-example-1: OUTCOME_STATUS_SUCCESS")


def test_10_children(ex):
    ex.run("10-children")
    ex.apply()
    names = ex.status("create_fn")["children"]
    assert len(names) == 1
    cm = json.loads(kubectl(ex.cluster, "get", "configmap", names[0], "-n", ex.ns,
                            "-o", "json").stdout)
    owner = ex.get()
    ref = cm["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == \
        ("KopfExample", "kopf-example-1", owner["metadata"]["uid"], True)
    assert cm["data"] == {"field": "value"}


def test_11_timers(ex):
    c = ex.run("11-timers")
    ex.apply()
    ex.wait(lambda: (ex.get().get("status", {}).get("every_second") or {}).get("ticks", 0) >= 3,
            timeout=30, what="three ticks")
    assert ex.get()["metadata"]["finalizers"] == ["herald.dev/finalizer"]
    kubectl(ex.cluster, "delete", "kopfexample", "kopf-example-1", "-n", ex.ns,
            "--wait=true", "--timeout=60s")
    runs = len([l for l in c.lines if "handler every_second succeeded" in l])
    time.sleep(3)
    assert len([l for l in c.lines if "handler every_second succeeded" in l]) == runs


def test_12_indices(ex):
    ex.apply("one", spec={"duration": "1m"})
    ex.apply("two", spec={"duration": "1m"})
    ex.apply("three", spec={"duration": "5m"})
    ex.run("12-indices")  # Started after the objects exist: the listing fills the index first.
    assert ex.status("create_fn", "one") == {"same_duration": ["two"]}
    assert ex.status("create_fn", "two") == {"same_duration": ["one"]}
    # The index, as grpcurl shows it.
    out = subprocess.run(["grpcurl", "-plaintext", "-d", '{"name": "by_duration", "key_json": "\\"1m\\""}',
                          f"unix://{ex.sock}", "herald.v1.InspectionService/GetIndex"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    [entry] = json.loads(out.stdout)["entries"]
    assert entry["key"] == "1m" and sorted(entry["values"]) == ["one", "two"]
    # An empty list is an absent field in status.
    ex.wait(lambda: "create_fn" in ex.get("three").get("status", {}) or
            "herald.dev/last-handled-configuration" in ex.herald_annotations("three"),
            what="three handled")


def test_13_daemons(ex):
    c = ex.run("13-daemons")
    ex.apply()
    # Its patches are applied while it runs.
    ex.wait(lambda: (ex.get().get("status", {}).get("monitor") or {}).get("beats", 0) >= 3,
            timeout=30, what="three heartbeats")
    assert ex.get()["metadata"]["finalizers"] == ["herald.dev/finalizer"]
    [daemon] = grpcurl(ex.sock, "ListDaemons", {"filter": {"namespace": ex.ns}})["daemons"]
    assert daemon["handler_id"] == "monitor" and daemon["state"] == "running"
    assert daemon["object"]["name"] == "kopf-example-1" and daemon["stream_id"]
    # Deletion: the daemon is told to stop, ends, and the finalizer goes.
    kubectl(ex.cluster, "delete", "kopfexample", "kopf-example-1", "-n", ex.ns,
            "--wait=true", "--timeout=60s")
    c.wait_for(r"stopping kopf-example-1: STOP_REASON_OBJECT_DELETED", timeout=10)
    assert grpcurl(ex.sock, "ListDaemons", {"filter": {"namespace": ex.ns}}).get("daemons", []) == []


def test_13_daemons_restart_on_another_process_when_theirs_dies(ex):
    first = ex.run("13-daemons")
    ex.apply()
    beats = lambda: ex.get().get("status", {}).get("monitor") or {}  # noqa: E731
    ex.wait(lambda: beats().get("beats", 0) >= 2, timeout=30, what="heartbeats")
    assert beats()["pid"] == first.proc.pid
    second = ex.run("13-daemons")
    first.proc.kill()  # SIGKILL: no goodbye, the stream just ends.
    ex.client = second
    ex.wait(lambda: beats().get("pid") == second.proc.pid, timeout=30,
            what="the daemon running in the second process")
    second.wait_for(r"monitoring kopf-example-1 in process \d+ \(restarted", timeout=10)
    [daemon] = grpcurl(ex.sock, "ListDaemons", {"filter": {"namespace": ex.ns}})["daemons"]
    assert daemon["restarts"] == 1 and daemon["state"] == "running"
    kubectl(ex.cluster, "delete", "kopfexample", "kopf-example-1", "-n", ex.ns,
            "--wait=true", "--timeout=60s")


def _http_get(url):
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


HEALTH_PORT = 18000 + os.getpid() % 1000


@pytest.mark.sidecar_args(f"--health_listen=127.0.0.1:{HEALTH_PORT}")
def test_14_activities(ex):
    base = f"http://127.0.0.1:{HEALTH_PORT}"
    c = ex.run("14-activities")
    c.wait_for(r"configured", timeout=30)
    ex.apply()
    # The startup handler filled both memos before the object was seen.
    assert ex.status("create_fn") == {"greeting": "hello", "region": "eu-1"}
    one = grpcurl(ex.sock, "GetObject", {"resource": "kopfexamples", "namespace": ex.ns,
                                         "name": "kopf-example-1"})
    assert one["memo"] == {"region": "eu-1"}
    ex.wait(lambda: _http_get(base + "/readyz")[0] == 200, what="ready")
    assert _http_get(base + "/healthz") == (200, {"probes": 1})
    assert _http_get(base + "/healthz") == (200, {"probes": 1})  # Reused for 10 s.
    # Cleanup runs when the sidecar stops.
    assert ex.sidecar.stop() == 0
    c.wait_for(r"cleaning up", timeout=10)
    ex.sidecar = None


def test_14_a_failing_startup_handler_stops_the_sidecar(ex, tmp_path):
    folder = tmp_path / "failing"
    folder.mkdir()
    (folder / "handlers.py").write_text(
        "import herald\n\n"
        "@herald.on.startup()\n"
        "def check_license(**_):\n"
        "    raise herald.PermanentError('no license found')\n\n"
        "@herald.on.create('kopfexamples')\n"
        "def create_fn(**_):\n"
        "    return 1\n")
    ex.run(None, path=folder)
    assert ex.sidecar.proc.wait(timeout=30) == 1
    wait_for(lambda: any("startup handler 'check_license' failed: no license found" in line
                         for line in ex.sidecar.lines), timeout=5, what="the error")
    ex.sidecar = None


def test_15_subhandlers(ex):
    c = ex.run("15-subhandlers")
    ex.apply(spec={"items": ["a", "slow"]})
    ex.wait(lambda: ex.get().get("status", {}).get("item-slow") == "created", timeout=30,
            what="both items created")
    assert ex.get()["status"]["item-a"] == "created"
    ex.wait(lambda: "herald.dev/last-handled-configuration" in ex.herald_annotations(),
            what="the parent done")
    # Every child's key and the parent's are gone once all are done.
    assert set(ex.herald_annotations()) == {"herald.dev/last-handled-configuration",
                                            "herald.dev/kopf-managed"}
    lines = "\n".join(c.lines)
    # item-a ran once: the retry of the parent skipped it.
    assert lines.count("sub-handler create_fn/item-a succeeded") == 1
    assert lines.count("sub-handler create_fn/item-slow failed temporarily") == 1
    assert lines.count("sub-handler create_fn/item-slow succeeded") == 1
    assert lines.count("handler create_fn succeeded") == 1
