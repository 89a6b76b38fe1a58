"""The operator as users run it: `kubectl apply -k` of an overlay of k8s/ on
a real node (tests/cluster/node.py), with the images scripts/images builds.
The pod becomes Ready through /readyz, the sidecar talks to the API server
in-cluster (the pod's projected service-account token, KUBERNETES_SERVICE_HOST,
no kubeconfig) with k8s/rbac.yaml's permissions only, an applied object gets
its status, `kubectl logs` shows both containers, each container restarting
alone is served again, and when the pod is deleted the next one takes over
without running a handler that succeeded again."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

from heraldproc import ROOT, Proc, wait_for
from node import LocalNode

NS = "herald-pod-e2e"
DEPLOYMENT = "kopfexample-operator"


@pytest.fixture(scope="module")
def node():
    """A node of its own for this module (stopped before other tests run,
    since one node runs on a machine at a time)."""
    n = LocalNode()
    t0 = time.monotonic()
    with n:
        print(f"\n[herald] node ready in {time.monotonic() - t0:.1f}s "
              f"({', '.join(f'{k} {v:.1f}s' for k, v in n.timings.items())})", file=sys.stderr)
        yield n


@pytest.fixture(scope="module")
def node_images(node, images):
    t0 = time.monotonic()
    for image in images:
        node.load_image(image)
    print(f"\n[herald] images loaded into the node in {time.monotonic() - t0:.1f}s",
          file=sys.stderr)
    return images


def _overlay(tmp_path, images) -> str:
    """k8s/ in the test's namespace, with the images scripts/images built
    (imported into the node, never pulled)."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (sidecar, sidecar_tag), (python, python_tag) = (i.rsplit(":", 1) for i in images)
    never = [{"op": "add", "path": f"/spec/template/spec/{kind}/0/imagePullPolicy",
              "value": "Never"} for kind in ("containers", "initContainers")]
    # One pod at a time (leader election stays on: it acquires the Lease
    # alone), so that each step below knows which pod handles.
    never += [{"op": "replace", "path": "/spec/replicas", "value": 1},
              {"op": "replace", "path": "/spec/strategy", "value": {"type": "Recreate"}}]
    (overlay / "kustomization.yaml").write_text(json.dumps({
        "resources": [os.path.relpath(ROOT / "k8s", overlay)],
        "namespace": NS,
        "images": [{"name": "herald", "newName": sidecar, "newTag": sidecar_tag},
                   {"name": "herald-python", "newName": python, "newTag": python_tag}],
        "patches": [{"target": {"kind": "Deployment"}, "patch": json.dumps(never)}],
    }))
    return str(overlay)


def _pods(node) -> list[dict]:
    out = node.kubectl("get", "pods", "-n", NS, "-l", f"app={DEPLOYMENT}", "-o", "json").stdout
    return json.loads(out)["items"]


def _ready_pod(node, other_than: str | None = None) -> dict | None:
    for pod in _pods(node):
        if pod["metadata"]["name"] == other_than or pod["metadata"].get("deletionTimestamp"):
            continue
        conds = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
        if conds.get("Ready") == "True":
            return pod
    return None


def _status(node, name: str):
    got = json.loads(node.kubectl("get", "kopfexample", name, "-n", NS, "-o", "json").stdout)
    return got.get("status", {}).get("create_fn")


def _apply_object(node, name: str) -> None:
    obj = {"apiVersion": "kopf.dev/v1", "kind": "KopfExample",
           "metadata": {"name": name, "namespace": NS}, "spec": {"field": name}}
    node.kubectl("apply", "-f", "-", input=json.dumps(obj))


def _restarts(node, pod: str, container: str) -> int:
    got = json.loads(node.kubectl("get", "pod", "-n", NS, pod, "-o", "json").stdout)
    status = got.get("status", {})
    for c in status.get("containerStatuses", []) + status.get("initContainerStatuses", []):
        if c["name"] == container:
            return c["restartCount"]
    return 0


def _logs(node, pod: str, container: str) -> str:
    return node.kubectl("logs", "-n", NS, pod, "-c", container).stdout


def test_operator_pod_in_cluster(node, node_images, tmp_path):
    def describe():
        return (node.kubectl("describe", "pods", "-n", NS, check=False).stdout[-3000:] + "\n" +
                node.log_tail("kubelet", 20))

    node.kubectl("create", "namespace", NS)
    t0 = time.monotonic()
    node.kubectl("apply", "-k", _overlay(tmp_path, node_images))
    pod = wait_for(lambda: _ready_pod(node), timeout=120, what="the operator pod Ready",
                   describe=describe)
    print(f"\n[herald] kubectl apply -k to the pod Ready: {time.monotonic() - t0:.1f}s",
          file=sys.stderr)
    name = pod["metadata"]["name"]

    # Ready means /readyz answered: the initial listings are done.
    sidecar = pod["spec"]["containers"][0]
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz", sidecar
    # In-cluster: no kubeconfig, no host path; the service account's token
    # projected, the API server reached through the kubernetes Service.
    spec = pod["spec"]
    assert not any("--kubeconfig" in a for c in spec["containers"] + spec["initContainers"]
                   for a in c.get("args", []))
    assert not any("hostPath" in v for v in spec["volumes"]), spec["volumes"]
    assert spec["serviceAccountName"] == "herald"
    assert any("projected" in v and any("serviceAccountToken" in s
                                        for s in v["projected"]["sources"])
               for v in spec["volumes"]), spec["volumes"]
    assert not spec.get("hostNetwork"), spec
    # Only k8s/rbac.yaml's permissions.
    sa = f"system:serviceaccount:{NS}:herald"
    for verb, resource, allowed in (("patch", "kopfexamples.kopf.dev", "yes"),
                                    ("create", "events", "yes"),
                                    ("list", "pods", "no"), ("create", "deployments", "no"),
                                    ("get", "secrets", "no")):
        got = node.kubectl("auth", "can-i", "--as", sa, verb, resource, "-n", NS,
                           check=False).stdout.strip()
        assert got == allowed, (verb, resource, got)

    _apply_object(node, "kopf-example-1")
    got = wait_for(lambda: _status(node, "kopf-example-1"), timeout=60,
                   what="status.create_fn of kopf-example-1", describe=describe)
    assert got == {"message": f"hello {NS}/kopf-example-1"}

    # kubectl logs: the kubelet serves them on the node's address, to
    # kube-apiserver's client certificate.
    sidecar_log = _logs(node, name, "herald")
    assert "API server https://10.0.0.1:443 (in-cluster service account)" in sidecar_log, \
        sidecar_log
    assert "registered 1 handler(s)" in sidecar_log, sidecar_log
    handlers_log = wait_for(lambda: (lambda t: t if "kopf-example-1" in t else None)(
        _logs(node, name, "handlers")), timeout=20, what="the handler's log line")
    assert f"[{NS}/kopf-example-1] A handler is called with body" in handlers_log, handlers_log
    assert f"[{NS}/kopf-example-1] handler create_fn succeeded" in handlers_log, handlers_log

    # Each container restarting alone (its process stopped with SIGTERM, the
    # kubelet restarting it): the handler process reconnects to the sidecar,
    # and to the sidecar's next process; objects are handled again after each.
    for container, n in (("handlers", 2), ("herald", 3)):
        restarts = _restarts(node, name, container)
        node.kubectl("exec", "-n", NS, name, "-c", container, "--", "sh", "-c", "kill 1")
        wait_for(lambda: _restarts(node, name, container) > restarts, timeout=60,
                 what=f"container {container} restarted", describe=describe)
        wait_for(lambda: _ready_pod(node), timeout=60, what="the pod Ready again",
                 describe=describe)
        _apply_object(node, f"kopf-example-{n}")
        got = wait_for(lambda: _status(node, f"kopf-example-{n}"), timeout=60,
                       what=f"status.create_fn of kopf-example-{n} after {container} restarted",
                       describe=describe)
        assert got == {"message": f"hello {NS}/kopf-example-{n}"}
    # The sidecar's second process served a handler process that registered
    # again, and neither ran a handler that had succeeded.
    sidecar_log = _logs(node, name, "herald")
    assert "registered 1 handler(s)" in sidecar_log, sidecar_log
    handlers_log = _logs(node, name, "handlers")
    assert handlers_log.count("registered 1 handler(s)") >= 2, handlers_log
    assert f"[{NS}/kopf-example-1]" not in handlers_log, handlers_log

    # The pod deleted: the Deployment's next pod takes over; what was
    # handled is not handled again, a new object is.
    t1 = time.monotonic()
    node.kubectl("delete", "pod", "-n", NS, name, "--wait=false")
    pod2 = wait_for(lambda: _ready_pod(node, other_than=name), timeout=120,
                    what="the next operator pod Ready", describe=describe)
    print(f"\n[herald] pod deleted to the next pod Ready: {time.monotonic() - t1:.1f}s",
          file=sys.stderr)
    name2 = pod2["metadata"]["name"]
    _apply_object(node, "kopf-example-4")
    got = wait_for(lambda: _status(node, "kopf-example-4"), timeout=60,
                   what="status.create_fn of kopf-example-4", describe=describe)
    assert got == {"message": f"hello {NS}/kopf-example-4"}
    log2 = wait_for(lambda: (lambda t: t if "kopf-example-4" in t else None)(
        _logs(node, name2, "handlers")), timeout=20, what="the next pod's handler log line")
    assert f"[{NS}/kopf-example-4] handler create_fn succeeded" in log2, log2
    # The new pod listed kopf-example-1 to 3 (handled) before
    # kopf-example-4 came, and ran no handler for them.
    for n in (1, 2, 3):
        assert f"[{NS}/kopf-example-{n}]" not in log2, log2
        assert _status(node, f"kopf-example-{n}") == {"message": f"hello {NS}/kopf-example-{n}"}

    # A pod's SIGTERM: the sidecar runs the cleanup handlers while the
    # handler stream is still open, and both containers stop within the
    # grace period. The example with a cleanup handler, rolled out.
    patch = [{"op": "replace", "path": "/spec/template/spec/initContainers/0/args/0",
              "value": "/app/examples/14-activities/handlers.py"}]
    node.kubectl("patch", "deployment", DEPLOYMENT, "-n", NS, "--type=json",
                 "-p", json.dumps(patch))

    def activities_pod():
        pod = _ready_pod(node, other_than=name2)
        args = pod and pod["spec"]["initContainers"][0]["args"]
        return pod if args and "14-activities" in args[0] else None
    name3 = wait_for(activities_pod, timeout=120, what="the rolled-out pod Ready",
                     describe=describe)["metadata"]["name"]
    follow = {c: Proc([str(node.bin_dir / "kubectl"), "logs", "-f", "-n", NS, name3, "-c", c],
                      env=node.cluster.env()) for c in ("herald", "handlers")}
    follow["handlers"].wait_for(r"registered \d+ handler\(s\)", timeout=30)
    t2 = time.monotonic()
    node.kubectl("delete", "pod", "-n", NS, name3, "--wait=true", timeout=60)
    stopped = time.monotonic() - t2
    for proc in follow.values():
        proc.proc.wait(timeout=30)
    handlers_log, sidecar_log = "\n".join(follow["handlers"].lines), "\n".join(follow["herald"].lines)
    assert "cleaning up" in handlers_log, handlers_log
    assert "received SIGTERM; stopping" in sidecar_log, sidecar_log
    assert sidecar_log.rstrip().endswith("stopped"), sidecar_log
    grace = pod2["spec"]["terminationGracePeriodSeconds"]
    assert stopped < grace, (stopped, grace)
