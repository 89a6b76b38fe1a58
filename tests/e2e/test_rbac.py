"""k8s/rbac.yaml is what the Deployment's sidecar needs, and no more.

The sidecar runs with the Deployment's own flags (k8s/deployment.yaml) and the
example handlers the Deployment runs, authenticated as a service account with
a bearer token (`kubectl create token`), bound to the rules of k8s/rbac.yaml:
an applied object is handled, its status written and its Event posted. Then,
for every verb of every rule, the same run with only that verb taken away:
the sidecar says the API server forbade something, naming the resource. A
rule that could be removed without the sidecar noticing fails the test (so
rbac.yaml grants nothing unused), and so does a rule the sidecar needs that
rbac.yaml lacks (the first run)."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest
import yaml

from heraldproc import BAZEL_BIN, ROOT, Proc, kubectl, wait_for

pytestmark = pytest.mark.usefixtures("binaries")
NS = "herald-rbac"
SA = "herald-rbac"
VENV_BIN = Path(sys.executable).parent


def _manifests(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((ROOT / "k8s" / name).read_text()) if d]


def _roles() -> list[dict]:
    """The Roles and ClusterRoles of k8s/rbac.yaml, with the bindings' subjects
    left to the test."""
    return [d for d in _manifests("rbac.yaml") if d["kind"] in ("Role", "ClusterRole")]


def _deployment_containers() -> tuple[list[str], list[str]]:
    """(the sidecar's args, the handler container's args) of k8s/deployment.yaml."""
    [deploy] = [d for d in _manifests("deployment.yaml") if d["kind"] == "Deployment"]
    spec = deploy["spec"]["template"]["spec"]
    containers = spec.get("containers", []) + spec.get("initContainers", [])
    [sidecar] = [c for c in containers if c["name"] == "herald"]
    [handler] = [c for c in containers if c["name"] != "herald"]
    return sidecar.get("args", []), handler.get("args", [])


def _variants() -> dict[str, tuple[list[dict], str]]:
    """{"all": (the roles as written, "")}, then one per verb of every rule
    with only that verb removed (the rule dropped when it was its last),
    with the resource the sidecar's complaint must name."""
    roles = _roles()
    out = {"all": (roles, "")}
    for r, role in enumerate(roles):
        for i, rule in enumerate(role["rules"]):
            for verb in rule["verbs"]:
                changed = copy.deepcopy(roles)
                rules = changed[r]["rules"]
                rules[i]["verbs"] = [v for v in rule["verbs"] if v != verb]
                if not rules[i]["verbs"]:
                    del rules[i]
                what = "/".join(f"{g or 'core'}.{res}" for g in rule.get("apiGroups", [""])
                                for res in rule["resources"])
                out[f"without {verb} {what}"] = (changed, rule["resources"][0].split("/")[0])
    return out


class Run:
    """The Deployment's sidecar and handler as service account SA bound to
    `roles`, in namespace NS."""

    def __init__(self, cluster, tmp_path: Path, roles: list[dict]):
        self.cluster = cluster
        self.names = []
        for role in roles:
            role = copy.deepcopy(role)
            kind = role["kind"]
            name = f"herald-rbac-{role['metadata']['name']}"
            role["metadata"] = {"name": name}
            binding = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding" if kind == "ClusterRole" else "RoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": NS}],
            }
            if kind == "Role":
                role["metadata"]["namespace"] = NS
                binding["metadata"]["namespace"] = NS
            self.names.append((kind, name))
            kubectl(cluster, "apply", "-f", "-", input=json.dumps(
                {"apiVersion": "v1", "kind": "List", "items": [role, binding]}))
        token = kubectl(cluster, "create", "token", SA, "-n", NS, "--duration=1h").stdout.strip()
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "c", "cluster": {
                "server": cluster.server,
                "certificate-authority": str(cluster.dir / "pki" / "ca.crt")}}],
            "users": [{"name": SA, "user": {"token": token}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": SA}}],
            "current-context": "c"}))
        sock = tmp_path / "herald.sock"
        sidecar_args, handler_args = _deployment_containers()
        # The Deployment's flags; the socket, the health port and the
        # namespaces moved to the test's (the rules are cluster-wide either way).
        args = [a for a in sidecar_args
                if not a.startswith(("--socket=", "--health_listen=", "--namespaces="))]
        env = dict(cluster.env(), KUBECONFIG=str(kubeconfig), POD_NAMESPACE=NS,
                   POD_NAME="herald-rbac-0")
        self.sidecar = Proc([str(BAZEL_BIN / "server" / "herald"), f"--socket={sock}",
                             f"--namespaces={NS}", "--health_listen=127.0.0.1:0", *args],
                            env=env)
        handler = [a if not a.startswith("/app/") else str(
            ROOT / "clients" / "python" / a.removeprefix("/app/")) for a in handler_args]
        handler = [f"unix:{sock}" if a.startswith("unix:") else a for a in handler]
        self.handler = Proc([str(VENV_BIN / "herald"), "run", *handler],
                            env=dict(env, PYTHONUNBUFFERED="1"))

    def describe(self) -> str:
        return ("sidecar:\n" + "\n".join(self.sidecar.lines[-30:]) +
                "\nhandler:\n" + "\n".join(self.handler.lines[-15:]))

    def forbidden(self) -> list[str]:
        return [line for line in self.sidecar.lines if "forbidden" in line.lower()]

    def close(self) -> None:
        self.handler.stop()
        self.sidecar.stop()
        for kind, name in self.names:
            kind_ns = ["-n", NS] if kind == "Role" else []
            kubectl(self.cluster, "delete", kind.lower(), name, *kind_ns, "--wait=false",
                    check=False)
            kubectl(self.cluster, "delete", kind.lower() + "binding", name, *kind_ns,
                    "--wait=false", check=False)


@pytest.fixture(scope="module")
def rbac_cluster(cluster):
    kubectl(cluster, "apply", "-f", str(ROOT / "k8s" / "crd.yaml"))
    kubectl(cluster, "wait", "--for=condition=Established", "--timeout=60s",
            "crd/kopfexamples.kopf.dev")
    kubectl(cluster, "create", "namespace", NS, check=False)
    kubectl(cluster, "create", "serviceaccount", SA, "-n", NS, check=False)
    return cluster


@pytest.mark.parametrize("variant", list(_variants()))
def test_rbac_is_what_the_deployment_needs(rbac_cluster, tmp_path, variant):
    roles, resource = _variants()[variant]
    name = f"rbac-{list(_variants()).index(variant)}"
    kubectl(rbac_cluster, "delete", "kopfexample", name, "-n", NS, "--ignore-not-found",
            "--wait=false")
    # No Lease left by an earlier run (with --leader_elect, creating it is
    # one of the verbs under test).
    kubectl(rbac_cluster, "delete", "leases", "--all", "-n", NS, "--ignore-not-found")
    run = Run(rbac_cluster, tmp_path, roles)
    try:
        run.handler.wait_for(r"registered \d+ handler\(s\)", timeout=60)
        kubectl(rbac_cluster, "apply", "-f", "-", input=json.dumps({
            "apiVersion": "kopf.dev/v1", "kind": "KopfExample",
            "metadata": {"name": name, "namespace": NS}, "spec": {"field": "value"}}))
        if variant == "all":
            def handled():
                obj = json.loads(kubectl(rbac_cluster, "get", "kopfexample", name, "-n", NS,
                                         "-o", "json").stdout)
                return obj.get("status", {}).get("create_fn")
            status = wait_for(handled, timeout=60, what=f"status.create_fn of {name}",
                              describe=run.describe)
            assert status == {"message": f"hello {NS}/{name}"}

            def posted():
                events = json.loads(kubectl(
                    rbac_cluster, "get", "events", "-n", NS, "-o", "json",
                    f"--field-selector=involvedObject.name={name}").stdout)["items"]
                return [e for e in events if "A handler is called" in e.get("message", "")]
            wait_for(posted, timeout=60, what=f"the handler's Event about {name}",
                     describe=run.describe)
            assert run.forbidden() == [], run.describe()
        else:
            lines = wait_for(run.forbidden, timeout=60,
                             what=f"the sidecar saying what was forbidden ({variant})",
                             describe=run.describe)
            assert any(resource in line for line in lines), (lines, run.describe())
    finally:
        run.close()
