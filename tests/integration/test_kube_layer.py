"""The sidecar's Kubernetes layer against the real local control plane.

`herald` runs with a resource and a scope and logs every event it sees;
writes go through kube_tool, which uses the same server/kube code.
"""

import base64
import json
import os
import re
import time

import pytest

from heraldproc import (apply_crd, apply_object, herald, kube_tool, kubectl, wait_for)

pytestmark = pytest.mark.usefixtures("binaries")
GROUP = "layer.herald.dev"


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_watch_sees_create_update_delete_of_a_crd_applied_after_start(cluster):
    h = herald(cluster, "--resource=gadgets." + GROUP)
    try:
        h.wait_for(r"unknown resource 'gadgets\.layer\.herald\.dev'.*waiting for it")
        apply_crd(cluster, GROUP, "Gadget", "gadgets")
        h.wait_for(r"LISTED gadgets\.v1\.layer\.herald\.dev", timeout=60)
        apply_object(cluster, GROUP, "Gadget", "g1", spec={"size": 1})
        h.wait_for(r"ADDED gadgets\.v1\.layer\.herald\.dev default/g1")
        kubectl(cluster, "patch", "gadget." + GROUP, "g1", "--type=merge",
                "-p", '{"spec":{"size":2}}')
        h.wait_for(r"MODIFIED gadgets\.v1\.layer\.herald\.dev default/g1")
        kubectl(cluster, "delete", "gadget." + GROUP, "g1")
        h.wait_for(r"DELETED gadgets\.v1\.layer\.herald\.dev default/g1")
    finally:
        assert h.stop() == 0
    assert [(t, k) for t, k, _, _ in h.events()] == [
        ("ADDED", "default/g1"), ("MODIFIED", "default/g1"), ("DELETED", "default/g1")]


def test_apiserver_restart_mid_watch_misses_nothing(cluster):
    apply_crd(cluster, GROUP, "Widget", "widgets")
    apply_object(cluster, GROUP, "Widget", "w1")
    h = herald(cluster, "--resource=widgets." + GROUP)
    try:
        h.wait_for(r"ADDED \S+ default/w1 rv=\d+ \(listing\)")
        cluster.restart_apiserver()
        # Changes right after the restart, while herald may still be
        # reconnecting, must all arrive, and nothing may arrive twice.
        apply_object(cluster, GROUP, "Widget", "w2")
        kubectl(cluster, "patch", "widget." + GROUP, "w1", "--type=merge",
                "-p", '{"spec":{"touched":true}}')
        h.wait_for(r"ADDED \S+ default/w2", timeout=60)
        h.wait_for(r"MODIFIED \S+ default/w1", timeout=60)
        time.sleep(1)
    finally:
        assert h.stop() == 0
    keys = [(t, k) for t, k, _, _ in h.events()]
    assert keys.count(("ADDED", "default/w1")) == 1, keys
    assert keys.count(("ADDED", "default/w2")) == 1, keys
    assert keys.count(("MODIFIED", "default/w1")) == 1, keys


def test_410_gone_relists_and_emits_only_differences(cluster):
    apply_crd(cluster, GROUP, "Sprocket", "sprockets")
    for name in ("s1", "s2", "s3"):
        apply_object(cluster, GROUP, "Sprocket", name)
    h = herald(cluster, "--resource=sprockets." + GROUP)
    try:
        for name in ("s1", "s2", "s3"):
            h.wait_for(rf"ADDED \S+ default/{name} rv=\d+ \(listing\)")
        mark = h.mark()
        # Behind the API server's back: s2 vanishes from etcd, the revision
        # moves on and history is compacted, so herald's resourceVersion is
        # too old when its watch reconnects.
        cluster.stop_apiserver()
        cluster._etcd_call("/v3/kv/deleterange",
                           {"key": b64(f"/registry/{GROUP}/sprockets/default/s2")})
        cluster._etcd_call("/v3/kv/put", {"key": b64("/herald-test/bump"), "value": b64("x")})
        cluster.compact_etcd()
        cluster.start_apiserver()
        h.wait_for(r"is too old .*relisting", timeout=90, start=mark)
        h.wait_for(r"DELETED \S+ default/s2 rv=\d+ \(listing\)", timeout=30, start=mark)
        apply_object(cluster, GROUP, "Sprocket", "s4")
        h.wait_for(r"ADDED \S+ default/s4", timeout=30, start=mark)
    finally:
        assert h.stop() == 0
    after = [(t, k) for t, k, _, _ in h.events()][3:]
    # Unchanged s1 and s3 produce nothing; only the difference and the new one.
    assert after == [("DELETED", "default/s2"), ("ADDED", "default/s4")], after


def test_patch_merge_json_with_resource_version_test_and_status(cluster):
    apply_crd(cluster, GROUP, "Doohickey", "doohickeys")
    apply_object(cluster, GROUP, "Doohickey", "d1", spec={"a": 1})
    res = "doohickeys." + GROUP
    kube_tool(cluster, "patch", res, "default", "d1", "merge", '{"spec":{"b":2}}')
    rv = json.loads(kube_tool(cluster, "get", res, "default", "d1").stdout)["metadata"]["resourceVersion"]
    guarded = json.dumps([{"op": "test", "path": "/metadata/resourceVersion", "value": rv},
                          {"op": "add", "path": "/metadata/finalizers", "value": ["herald.dev/test"]}])
    kube_tool(cluster, "patch", res, "default", "d1", "json", guarded)
    # The same guarded patch again: the resourceVersion moved, the test fails,
    # and the server's answer comes back intact.
    stale = kube_tool(cluster, "patch", res, "default", "d1", "json", guarded, check=False)
    assert stale.returncode == 1
    assert stale.stderr.strip().endswith(
        "HTTP 422: the server rejected our request due to an error in our request"), stale.stderr
    # A validation error names the field.
    invalid = kube_tool(cluster, "patch", res, "default", "d1", "merge",
                        '{"metadata":{"labels":{"bad label":"x"}}}', check=False)
    assert invalid.returncode == 1
    assert "HTTP 422" in invalid.stderr and "metadata.labels" in invalid.stderr, invalid.stderr
    kube_tool(cluster, "patch", res, "default", "d1", "status", '{"status":{"phase":"Done"}}')
    obj = json.loads(kubectl(cluster, "get", res, "d1", "-o", "json").stdout)
    assert obj["spec"] == {"a": 1, "b": 2}
    assert obj["metadata"]["finalizers"] == ["herald.dev/test"]
    assert obj["status"] == {"phase": "Done"}
    kube_tool(cluster, "patch", res, "default", "d1", "merge", '{"metadata":{"finalizers":null}}')
    bad = kube_tool(cluster, "patch", res, "default", "nope", "merge", "{}", check=False)
    assert bad.returncode == 1 and "HTTP 404" in bad.stderr


def test_event_is_posted_and_seen_by_kubectl(cluster):
    apply_crd(cluster, GROUP, "Gizmo", "gizmos")
    apply_object(cluster, GROUP, "Gizmo", "z1")
    long_message = "x" * 3000
    kube_tool(cluster, "event", "gizmos." + GROUP, "default", "z1", "Warning",
              "Herald", long_message)
    out = json.loads(kubectl(cluster, "get", "events", "-o", "json",
                             "--field-selector", "involvedObject.name=z1").stdout)
    ours = [e for e in out["items"] if e["reason"] == "Herald"]
    assert len(ours) == 1
    ev = ours[0]
    assert ev["type"] == "Warning"
    assert ev["involvedObject"]["kind"] == "Gizmo"
    assert ev["source"]["component"] == "herald"
    assert len(ev["message"]) == 1024 and ev["message"].endswith("...")


def test_namespace_globs_and_negations_follow_namespaces(cluster):
    apply_crd(cluster, GROUP, "Thing", "things")
    for ns in ("team-a", "team-x", "other"):
        kubectl(cluster, "create", "namespace", ns, check=False)
        apply_object(cluster, GROUP, "Thing", "t-" + ns, namespace=ns)
    h = herald(cluster, "--resource=things." + GROUP, "--namespaces=team-*,!team-x")
    try:
        h.wait_for(r"ADDED \S+ team-a/t-team-a")
        # A namespace created later is picked up.
        kubectl(cluster, "create", "namespace", "team-b")
        h.wait_for(r"watching namespace team-b", timeout=30)
        apply_object(cluster, GROUP, "Thing", "t-team-b", namespace="team-b")
        h.wait_for(r"ADDED \S+ team-b/t-team-b")
        apply_object(cluster, GROUP, "Thing", "t2-team-x", namespace="team-x")
        apply_object(cluster, GROUP, "Thing", "t2-other", namespace="other")
        apply_object(cluster, GROUP, "Thing", "t2-team-a", namespace="team-a")
        h.wait_for(r"ADDED \S+ team-a/t2-team-a")
    finally:
        assert h.stop() == 0
    namespaces = {k.split("/")[0] for _, k, _, _ in h.events()}
    assert namespaces == {"team-a", "team-b"}


def test_broken_kubeconfig_exits_at_once_naming_file_and_field(cluster, tmp_path):
    cfg = json.loads(cluster.kubeconfig.read_text())
    cfg["users"][0]["user"]["client-key"] = str(tmp_path / "missing.key")
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(cfg))
    h = herald(cluster, "--resource=pods", f"--kubeconfig={path}")
    assert h.proc.wait(timeout=10) == 2
    time.sleep(0.2)
    out = [line for line in h.lines if line.strip()]
    assert len(out) == 1, out
    assert str(path) in out[0] and "users[herald-admin].user.client-key" in out[0], out[0]
    assert "missing.key" in out[0]

    h = herald(cluster, "--resource=pods", f"--kubeconfig={path}", "--context=nope")
    assert h.proc.wait(timeout=10) == 2
    time.sleep(0.2)
    assert "no entry named 'nope'" in h.lines[0]


def test_unreachable_api_server_is_retried_without_exiting(cluster, tmp_path):
    from localcluster import free_port
    cfg = json.loads(cluster.kubeconfig.read_text())
    cfg["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(cfg))
    h = herald(cluster, "--resource=pods", f"--kubeconfig={path}")
    try:
        port = cfg["clusters"][0]["cluster"]["server"].rsplit(":", 1)[1]
        refused = rf"not ready: cannot reach the API server to resolve 'pods': connecting to https://127.0.0.1:{port}: Connection refused"
        # Resolving the resource is retried with Kopf's backoff (1, 1, 2, 3 s).
        wait_for(lambda: len([line for line in h.lines if re.search(refused, line)]) >= 5,
                 timeout=30, what="five attempts to resolve 'pods'")
        assert h.proc.poll() is None, "herald exited on an unreachable API server"
    finally:
        assert h.stop() == 0


def test_refused_credentials_are_logged_as_such(cluster, tmp_path):
    """A token the API server does not know: HTTP 401, which is not a network
    problem and must not be reported as one."""
    cfg = json.loads(cluster.kubeconfig.read_text())
    cfg["users"][0]["user"] = {"token": "not-a-known-token"}
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(cfg))
    h = herald(cluster, "--resource=pods", f"--kubeconfig={path}")
    try:
        h.wait_for(r"\[kube\] not ready: cannot resolve 'pods': the API server refused the "
                   r"credentials \(check the kubeconfig's user: token, token file or client "
                   r"certificate\): GET /api: HTTP 401: Unauthorized; retrying")
        assert h.proc.poll() is None, "herald exited on refused credentials"
    finally:
        assert h.stop() == 0
    assert not [line for line in h.lines if "cannot reach" in line], h.lines


def test_token_file_is_read_again_when_it_rotates(cluster, tmp_path):
    cluster.set_tokens({"token-one": "herald-sa", "token-two": "herald-sa"})
    cluster.restart_apiserver()
    apply_crd(cluster, GROUP, "Rotor", "rotors")
    token_file = tmp_path / "token"
    token_file.write_text("token-one\n")
    cfg = json.loads(cluster.kubeconfig.read_text())
    cfg["users"][0]["user"] = {"tokenFile": str(token_file)}
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(cfg))
    h = herald(cluster, "--resource=rotors." + GROUP, f"--kubeconfig={path}")
    try:
        h.wait_for(r"LISTED rotors")
        # Rotate: the file gets the new token, the old one stops being valid.
        token_file.write_text("token-two\n")
        cluster.set_tokens({"token-two": "herald-sa"})
        cluster.restart_apiserver()
        apply_object(cluster, GROUP, "Rotor", "r1")
        h.wait_for(r"ADDED \S+ default/r1", timeout=60)
        assert not [line for line in h.lines if "HTTP 401" in line], h.lines
    finally:
        assert h.stop() == 0
        cluster.set_tokens({})
