"""Smoke tests of the local control plane with the real kubectl."""

import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path

import pytest

from localcluster import LocalCluster

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "k8s" / "crd.yaml"
OBJECT = ROOT / "k8s" / "example-object.yaml"
OBJECT_PATH = "/apis/kopf.dev/v1/namespaces/default/kopfexamples/kopf-example-1"


def kubectl(cluster, *args, check=True, input=None):
    return subprocess.run(["kubectl", *args], env=cluster.env(), capture_output=True,
                          text=True, check=check, timeout=60, input=input)


def lines_of(proc):
    """A queue fed with the process's stdout lines by a reader thread."""
    q = queue.Queue()

    def pump():
        for line in proc.stdout:
            q.put(line.rstrip("\n"))
        q.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return q


def next_line(q, timeout=30.0):
    line = q.get(timeout=timeout)
    assert line is not None, "the watch ended early"
    return line


@pytest.fixture(scope="module")
def crd(cluster):
    kubectl(cluster, "apply", "-f", str(CRD))
    kubectl(cluster, "wait", "--for=condition=Established", "--timeout=60s",
            "crd/kopfexamples.kopf.dev")
    return cluster


def test_kubectl_matches_the_server_version(cluster):
    out = json.loads(kubectl(cluster, "version", "-o", "json").stdout)
    client, server = out["clientVersion"], out["serverVersion"]
    assert server["gitVersion"].startswith("v1.")
    assert (client["major"], client["minor"]) == (server["major"], server["minor"])


def test_apply_crd_and_object_then_read_back_through_the_api(crd):
    cluster = crd
    watch = subprocess.Popen(["kubectl", "get", "kopfexamples", "-w", "-o",
                              "custom-columns=NAME:.metadata.name,FIELD:.spec.field",
                              "--no-headers"],
                             env=cluster.env(), stdout=subprocess.PIPE, text=True)
    try:
        q = lines_of(watch)
        # Give the watch time to be established before the create.
        time.sleep(1.0)
        kubectl(cluster, "apply", "-f", str(OBJECT))
        assert next_line(q).split() == ["kopf-example-1", "value"]

        kubectl(cluster, "patch", "kopfexample", "kopf-example-1", "--type=merge",
                "-p", '{"spec": {"field": "changed"}}')
        assert next_line(q).split() == ["kopf-example-1", "changed"]
    finally:
        watch.terminate()
        watch.wait(timeout=10)

    status, body = cluster.request("GET", OBJECT_PATH)
    assert status == 200, body
    assert body["kind"] == "KopfExample"
    assert body["spec"]["field"] == "changed"
    assert body["spec"]["items"] == ["item1", "item2"]
    assert body["metadata"]["labels"] == {"somelabel": "somevalue"}


def test_status_subresource_is_served(crd):
    cluster = crd
    kubectl(cluster, "apply", "-f", str(OBJECT))
    status, body = cluster.request(
        "PATCH", OBJECT_PATH + "/status", {"status": {"smoke": {"ok": True}}},
        content_type="application/merge-patch+json")
    assert status == 200, body
    out = kubectl(cluster, "get", "kopfexample", "kopf-example-1", "-o",
                  "jsonpath={.status.smoke.ok}").stdout
    assert out == "true"


def test_objects_survive_an_apiserver_restart(crd):
    cluster = crd
    kubectl(cluster, "apply", "-f", str(OBJECT))
    before = cluster.request("GET", OBJECT_PATH)[1]["metadata"]["uid"]
    cluster.restart_apiserver()
    status, body = cluster.request("GET", OBJECT_PATH)
    assert status == 200
    assert body["metadata"]["uid"] == before


def test_etcd_compaction_makes_old_revisions_unreadable(cluster):
    old = cluster.compact_etcd()
    kubectl(cluster, "create", "configmap", "compaction-probe", "--from-literal=a=b")
    new = cluster.compact_etcd()
    assert new > old
    with pytest.raises(Exception, match="compacted"):
        cluster._etcd_call("/v3/kv/range", {"key": "AA==", "revision": str(old)})


def running(pid):
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_stop_leaves_no_process_and_no_files():
    c = LocalCluster().start()
    pids = [c._etcd.pid, c._apiserver.pid]
    workdir, port = c.dir, c.apiserver_port
    c.stop()
    for pid in pids:
        assert not running(pid), f"process {pid} still running"
    assert not workdir.exists()
    import socket
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the API server port still answers"


def test_servers_die_with_their_parent(tmp_path):
    """A killed test process leaves no control plane behind."""
    script = (
        "import sys, time; sys.path.insert(0, %r)\n"
        "from localcluster import LocalCluster\n"
        "c = LocalCluster(workdir=%r).start()\n"
        "print(c._etcd.pid, c._apiserver.pid, flush=True)\n"
        "time.sleep(600)\n"
    ) % (str(ROOT / "tests" / "cluster"), str(tmp_path / "c"))
    parent = subprocess.Popen(["python3", "-c", script], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(pids) == 2
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(running(p) for p in pids):
        time.sleep(0.1)
    alive = [p for p in pids if running(p)]
    assert not alive, f"still running after the parent was killed: {alive}"


def test_pod_manifests_are_accepted_by_the_api_server(crd):
    """k8s/rbac.yaml and k8s/deployment.yaml pass the API server's own
    validation (a server-side dry run; nothing runs pods here)."""
    for name in ("rbac.yaml", "deployment.yaml"):
        out = kubectl(crd, "apply", "--dry-run=server", "-f", str(ROOT / "k8s" / name),
                      check=False)
        assert out.returncode == 0, out.stderr
        assert "(server dry run)" in out.stdout


def test_k8s_is_a_kustomization_with_overridable_namespace_and_images(crd, tmp_path):
    """`kubectl apply -k k8s/` applies the CRD, the RBAC and the Deployment;
    an overlay moves all of it to its namespace (the ClusterRoleBinding's
    subject too) and swaps the images."""
    def render(folder) -> list[dict]:
        import yaml  # PyYAML, with the kubernetes package
        out = kubectl(crd, "kustomize", str(folder), check=False)
        assert out.returncode == 0, out.stderr
        return [d for d in yaml.safe_load_all(out.stdout) if d]

    def kinds(objs):
        return sorted(o["kind"] for o in objs)

    base = render(ROOT / "k8s")
    assert kinds(base) == ["ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                           "Deployment", "Role", "RoleBinding", "ServiceAccount"]
    dry = kubectl(crd, "apply", "-k", str(ROOT / "k8s"), "--dry-run=server", check=False)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("(server dry run)") == 7, dry.stdout

    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(json.dumps({
        "resources": [os.path.relpath(ROOT / "k8s", overlay)],
        "namespace": "operators",
        "images": [{"name": "herald", "newName": "registry.example.com/herald", "newTag": "v9"},
                   {"name": "herald-python", "newName": "registry.example.com/handlers",
                    "newTag": "1"}],
    }))
    objs = {o["kind"]: o for o in render(overlay)}
    for kind in ("ServiceAccount", "Deployment", "Role", "RoleBinding"):
        assert objs[kind]["metadata"]["namespace"] == "operators", objs[kind]
    assert objs["ClusterRoleBinding"]["subjects"][0]["namespace"] == "operators"
    assert objs["RoleBinding"]["subjects"][0]["namespace"] == "operators"
    # Leader election's Lease: exactly get, create and update, in the
    # pod's namespace only.
    assert objs["Role"]["rules"] == [{"apiGroups": ["coordination.k8s.io"],
                                      "resources": ["leases"],
                                      "verbs": ["get", "create", "update"]}]
    deployment = objs["Deployment"]["spec"]
    assert deployment["replicas"] == 2
    assert deployment["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    herald = deployment["template"]["spec"]["containers"][0]
    assert "--leader_elect" in herald["args"]
    assert herald["env"] == [{"name": "POD_NAME",
                              "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    pod = objs["Deployment"]["spec"]["template"]["spec"]
    images = [c["image"] for c in pod["containers"] + pod["initContainers"]]
    assert images == ["registry.example.com/herald:v9", "registry.example.com/handlers:1"]
