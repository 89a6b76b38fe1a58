"""The container images, built from images/*/Dockerfile by scripts/images,
run with podman against the real local control plane: the sidecar image
(host network, a kubeconfig mounted) and the Python handler image (no network
at all) sharing the handler socket through a mounted directory. An object
applied with kubectl gets the status the example's handler returns."""

from __future__ import annotations

import base64
import json
import os
import re
import resource
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest

from heraldproc import ROOT, Proc, kubectl, wait_for
from localcluster import free_port

USER = "65532:65532"
# Without --ulimit, rootful podman asks the runtime for open-file and process
# limits above what a process without CAP_SYS_RESOURCE may set (runc then
# fails: "error setting rlimit type 7: operation not permitted"). These are
# under the caller's hard limits and ample for a sidecar and a handler.
_NOFILE = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
_NPROC = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 4096)
LIMITS = [f"--ulimit=nofile={_NOFILE}:{_NOFILE}", f"--ulimit=nproc={_NPROC}:{_NPROC}"]
# Root's podman (scripts/images builds into root's image store), with
# cgroupfs: no systemd is needed.
PODMAN = [*([] if os.geteuid() == 0 else ["sudo"]), "podman", "--cgroup-manager=cgroupfs",
          "--events-backend=file"]


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    if args[0] == "run":  # No network: nothing for podman to set up or leave behind.
        args = ("run", "--network=none", *LIMITS, *args[1:])
    return subprocess.run([*PODMAN, *args], capture_output=True, text=True, check=check,
                          timeout=timeout)


@pytest.fixture
def containers():
    """Names for this test's containers; every one is removed afterwards, and
    none may be left behind."""
    label = f"dev.herald.test={uuid.uuid4().hex[:12]}"
    made: list[str] = []

    def name(role: str) -> tuple[str, str]:
        n = f"herald-test-{role}-{label[-12:]}"
        made.append(n)
        return n, label

    yield name
    ids = podman("ps", "--all", "--no-trunc", "--filter", f"label={label}",
                 "--format", "{{.ID}}").stdout.split()
    for n in made:
        podman("rm", "--force", "--ignore", "--time=5", n, check=False)
    left = podman("ps", "--all", "--filter", f"label={label}", "--format", "{{.Names}}").stdout
    assert not left.strip(), f"containers left behind: {left}"
    mounts = open("/proc/mounts").read()
    assert not [i for i in ids if i in mounts], f"mounts left behind: {mounts}"
    cgroups = [str(p) for i in ids for p in Path("/sys/fs/cgroup").glob(f"**/libpod-{i}*")]
    assert not cgroups, f"cgroups left behind: {cgroups}"


def _embedded_kubeconfig(cluster, path) -> None:
    """The cluster's kubeconfig with its certificates inline, readable by the
    image's unprivileged user."""
    cfg = json.loads(cluster.kubeconfig.read_text())
    for c in cfg["clusters"]:
        ca = c["cluster"].pop("certificate-authority")
        c["cluster"]["certificate-authority-data"] = base64.b64encode(open(ca, "rb").read()).decode()
    for u in cfg["users"]:
        for key in ("client-certificate", "client-key"):
            u["user"][f"{key}-data"] = base64.b64encode(open(u["user"].pop(key), "rb").read()).decode()
    path.write_text(json.dumps(cfg))
    path.chmod(0o644)


def test_images_run_as_non_root(images):
    for image in images:
        user = podman("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
        assert user == USER, (image, user)
        ids = podman("run", "--rm", "--entrypoint", "id", image).stdout
        assert ids.startswith("uid=65532(herald) gid=65532(herald)"), (image, ids)


def test_sidecar_image_is_the_optimized_stamped_build(images):
    out = podman("run", "--rm", images[0], "--version").stdout.strip()
    version = (ROOT / "VERSION").read_text().strip()
    assert re.fullmatch(rf"herald {re.escape(version)} \(commit [0-9a-f]{{40}}(-dirty)?, "
                        r"optimized build\)", out), out
    # Only the binary's runtime libraries: no compiler, no Bazel, no headers.
    found = podman("run", "--rm", "--entrypoint", "sh", images[0], "-c",
                   "ls /usr/bin/gcc /usr/bin/bazel /usr/include/grpcpp 2>/dev/null; true").stdout
    assert not found.strip(), found


def test_pod_of_images_handles_an_object(cluster, images, containers, tmp_path):
    sidecar_image, python_image = images
    ns = "images-e2e"
    kubectl(cluster, "apply", "-f", str(ROOT / "k8s" / "crd.yaml"))
    kubectl(cluster, "wait", "--for=condition=Established", "--timeout=60s",
            "crd/kopfexamples.kopf.dev")
    kubectl(cluster, "create", "namespace", ns, check=False)
    kubeconfig = tmp_path / "kubeconfig"
    _embedded_kubeconfig(cluster, kubeconfig)
    sock_dir = tmp_path / "run-herald"
    sock_dir.mkdir()
    os.chown(sock_dir, 65532, 65532)
    health = free_port()

    sidecar_name, label = containers("sidecar")
    sidecar = Proc([*PODMAN, "run", *LIMITS,
                    "--name", sidecar_name, "--label", label, "--network=host",
                    "-v", f"{kubeconfig}:/etc/herald/kubeconfig:ro", "-v", f"{sock_dir}:/run/herald",
                    sidecar_image, "--kubeconfig=/etc/herald/kubeconfig",
                    "--socket=/run/herald/herald.sock", f"--namespaces={ns}",
                    f"--health_listen=127.0.0.1:{health}"], env=dict(os.environ))
    handler_name, _ = containers("handler")
    handler = None
    try:
        wait_for(lambda: (sock_dir / "herald.sock").exists(), timeout=60,
                 what="the sidecar's socket", describe=lambda: "\n".join(sidecar.lines[-30:]))
        # The handler container has no network: only the shared socket.
        handler = Proc([*PODMAN, "run", *LIMITS,
                        "--name", handler_name, "--label", label, "--network=none",
                        "-v", f"{sock_dir}:/run/herald", python_image], env=dict(os.environ))
        handler.wait_for(r"registered \d+ handler\(s\)", timeout=60)

        def ready():
            with urllib.request.urlopen(f"http://127.0.0.1:{health}/readyz", timeout=5) as r:
                return r.status == 200
        wait_for(ready, timeout=60, what="/readyz", describe=lambda: "\n".join(sidecar.lines[-30:]))

        obj = {"apiVersion": "kopf.dev/v1", "kind": "KopfExample",
               "metadata": {"name": "kopf-example-1", "namespace": ns},
               "spec": {"field": "value"}}
        kubectl(cluster, "apply", "-f", "-", input=json.dumps(obj))

        def status():
            got = json.loads(kubectl(cluster, "get", "kopfexample", "kopf-example-1", "-n", ns,
                                     "-o", "json").stdout)
            return got.get("status", {}).get("create_fn")
        got = wait_for(status, timeout=60, what="status.create_fn",
                       describe=lambda: "\n".join(sidecar.lines[-20:] + handler.lines[-20:]))
        assert got == {"message": f"hello {ns}/kopf-example-1"}
        handler.wait_for(r"A handler is called with body", timeout=10)

        # Both stop gracefully on SIGTERM (podman stop), each the PID 1 of
        # its container.
        for name, proc in ((handler_name, handler), (sidecar_name, sidecar)):
            podman("stop", "--time=20", name)
            assert proc.proc.wait(timeout=30) == 0, "\n".join(proc.lines[-30:])
    finally:
        for proc in (handler, sidecar):
            if proc is not None and proc.proc.poll() is None:
                proc.proc.kill()
                proc.proc.wait()
        kubectl(cluster, "delete", "namespace", ns, "--wait=false", check=False)
