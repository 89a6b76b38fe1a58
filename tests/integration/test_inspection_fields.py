"""What the inspection and health services tell an operator, asked with the
real grpcurl of a real sidecar against the real control plane."""

import json
import subprocess

import pytest

from heraldproc import apply_crd, apply_object, kubectl, sidecar, wait_for

pytestmark = pytest.mark.usefixtures("binaries")
GROUP = "inspect.herald.dev"


def grpcurl(sock, method, body=None, check=True):
    args = ["grpcurl", "-plaintext"]
    if body is not None:
        args += ["-d", json.dumps(body)]
    out = subprocess.run(args + [f"unix://{sock}", method],
                         capture_output=True, text=True, timeout=30)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def resources(sock):
    out = grpcurl(sock, "herald.v1.InspectionService/ListResources")
    return json.loads(out.stdout)["resources"]


def service_account_kubeconfig(cluster, tmp_path, name):
    """A kubeconfig for a new service account with no permissions."""
    status, body = cluster.request("POST", "/api/v1/namespaces/default/serviceaccounts", {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
    assert status in (201, 409), body
    status, body = cluster.request(
        "POST", f"/api/v1/namespaces/default/serviceaccounts/{name}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
         "spec": {"expirationSeconds": 3600}})
    assert status == 201, body
    cfg = json.loads(cluster.kubeconfig.read_text())
    cfg["users"][0]["user"] = {"token": body["status"]["token"]}
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(cfg))
    return path


def test_list_resources_shows_a_failing_watch_why_and_its_recovery(cluster, tmp_path):
    """A watch the RBAC forbids backs off and says why; granted the rights,
    it watches and reports the resourceVersion it has seen."""
    apply_crd(cluster, GROUP, "Guarded", "guardeds")
    sa = "herald-inspect-guarded"
    kubeconfig = service_account_kubeconfig(cluster, tmp_path, sa)
    sock = tmp_path / "herald.sock"
    h = sidecar(cluster, sock, f"--kubeconfig={kubeconfig}", f"--resource=guardeds.{GROUP}",
                "--namespaces=default")
    try:
        backing_off = wait_for(
            lambda: [r for r in resources(sock) if r.get("state") == "WATCH_STATE_BACKING_OFF"],
            what="BACKING_OFF", describe=lambda: "\n".join(h.lines[-5:]))
        [r] = backing_off
        assert r["resource"]["plural"] == "guardeds"
        error = r["last_error"]
        assert "namespace default: listing failed" in error, error
        assert "forbidden" in error and f"system:serviceaccount:default:{sa}" in error, error
        assert "resource_version" not in r  # Nothing listed yet.

        status, body = cluster.request(
            "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles", {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": sa},
                "rules": [{"apiGroups": [GROUP], "resources": ["guardeds"],
                           "verbs": ["get", "list", "watch"]}]})
        assert status in (201, 409), body
        status, body = cluster.request(
            "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": sa},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
                "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": "default"}]})
        assert status in (201, 409), body

        [r] = wait_for(lambda: [r for r in resources(sock)
                                if r.get("state") == "WATCH_STATE_WATCHING"],
                       what="WATCHING after the grant", describe=lambda: json.dumps(resources(sock)))
        assert r.get("resource_version"), r
        # The failure stays visible, with its time, after the recovery.
        assert r["last_error"] == error

        # The version follows what the watch delivers.
        apply_object(cluster, GROUP, "Guarded", "g1")
        rv = json.loads(kubectl(cluster, "get", f"guardeds.{GROUP}", "g1", "-o",
                                "json").stdout)["metadata"]["resourceVersion"]
        wait_for(lambda: resources(sock)[0].get("resource_version") == rv,
                 what=f"resource_version {rv}", describe=lambda: json.dumps(resources(sock)))
    finally:
        assert h.stop() == 0


def test_health_knows_every_service_the_sidecar_serves(cluster, tmp_path):
    sock = tmp_path / "herald.sock"
    h = sidecar(cluster, sock)
    try:
        listed = wait_for(lambda: (out := grpcurl(sock, "list", check=False)).returncode == 0
                          and out.stdout.split(), what="grpcurl list")
        assert "herald.v1.InspectionService" in listed, listed
        for service in ["", *listed]:
            out = grpcurl(sock, "grpc.health.v1.Health/Check", {"service": service}, check=False)
            assert out.returncode == 0, f"{service!r}: {out.stderr}"
            assert json.loads(out.stdout) == {"status": "SERVING"}, (service, out.stdout)
        out = grpcurl(sock, "grpc.health.v1.Health/Check", {"service": "herald.v1.Nope"},
                      check=False)
        assert out.returncode != 0 and "NotFound" in out.stderr, out.stderr
    finally:
        assert h.stop() == 0
