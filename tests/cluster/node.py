#!/usr/bin/env python3
"""A real Kubernetes node for the local control plane: pods run here.

`LocalNode` starts its own `LocalCluster` (kube-apiserver on the node's
address, so that pods reach it through the `kubernetes` Service, with the
ServiceAccount admission plugin on, so that pods get projected tokens), then
containerd (Debian's, with a private configuration, root, state and socket),
kubelet, kube-proxy, kube-scheduler and kube-controller-manager, and waits
until the node is Ready. `load_image` copies an image from root's podman
store into the node's containerd.

What it sets up on the machine, and takes down again on stop:

- the node's address, 198.18.0.1 (RFC 2544's benchmarking range: routed
  nowhere), on the loopback link, labelled `lo:herald`; kube-apiserver and
  the kubelet serve on it, and the `kubernetes` Service points at it (the
  API server refuses loopback addresses, 127.0.0.0/8, as its endpoint);
- the CNI bridge `herald-cni0` for the pods' network, 10.244.0.0/24
  (host-local IPAM keeps its leases in the node's folder);
- kubelet's and kube-proxy's `KUBE-*` iptables chains (IPv4 and IPv6);
- the `kubepods` cgroups under every cgroup v1 controller (or the unified
  hierarchy);
- mounts under the node's folder (kubelet's root, pod volumes, containerd's
  snapshots and network namespaces);
- files that the containers' shims, kubelet and CNI keep outside it whatever
  their configuration (shim and device-plugin sockets that nothing listens
  on, CNI's cached results for the node's network);
- the kernel parameters kubelet sets (`vm.overcommit_memory`,
  `kernel.panic`, ...), restored to what they were.

One node runs on a machine at a time: `start` takes an exclusive lock
(`NodeLock`, /tmp/herald-node.lock, waiting for another run to finish), then
sweeps whatever a run that died left behind, before it starts anything
(`tests/cluster/node.py sweep` does that alone). Every
process it starts is killed when the process that started it dies (as
LocalCluster's are); the containers' shims, which containerd detaches, are
found by the node's folder in their command line.

Needs root, and the binaries scripts/setup builds (kubelet, kube-proxy,
kube-scheduler, kube-controller-manager, pause) and installs (containerd,
runc, the CNI plugins).

    with LocalNode() as node:
        node.load_image("localhost/herald:0.1.0")
        subprocess.run(["kubectl", "get", "nodes"], env=node.cluster.env())

or `tests/cluster/node.py up` to keep one running until Ctrl+C.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import glob
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from localcluster import ClusterError, LocalCluster, _die_with_parent, free_port, herald_bin  # noqa: E402

NODE_NAME = "herald-node"
NODE_IP = "198.18.0.1"
NODE_LABEL = "lo:herald"
BRIDGE = "herald-cni0"
POD_CIDR = "10.244.0.0/24"
SERVICE_IP = "10.0.0.1"
PAUSE_IMAGE = "localhost/herald-pause:1"
DIR_PREFIX = "herald-node-"
LOCK_FILE = Path("/tmp/herald-node.lock")
# Kernel parameters kubelet sets at start (setupKernelTunables).
KUBELET_SYSCTLS = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic",
                   "kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes")
# Paths that containerd's shims, kubelet and CNI use whatever they are
# configured with: the shims' sockets, kubelet's device-plugin socket, CNI's
# result cache.
SHIM_SOCKETS = Path("/run/containerd/s")
DEVICE_PLUGINS = Path("/var/lib/kubelet/device-plugins")
CNI_RESULTS = Path("/var/lib/cni/results")
CONTAINERD = "/usr/bin/containerd"
CTR = "/usr/bin/ctr"


class NodeError(ClusterError):
    """The node could not be started, or its pods' state read."""


def _run(*args: str, check: bool = True, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)
    if check and res.returncode != 0:
        raise NodeError(f"{' '.join(args)} exited with {res.returncode}: "
                        f"{(res.stderr or res.stdout).strip()[-2000:]}")
    return res


class NodeLock:
    """The machine-wide lock a node is started and swept under (an exclusive
    flock on LOCK_FILE, released when its holder closes it or dies)."""

    def __init__(self, timeout: float = 1200.0):
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self) -> "NodeLock":
        fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    os.close(fd)
                    raise NodeError(f"another local node holds {LOCK_FILE} "
                                    f"(pid {LOCK_FILE.read_text().strip()})") from e
                time.sleep(1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # Closing releases the lock.
            self._fd = None

    def __enter__(self) -> "NodeLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class LocalNode:
    """One node, its control-plane controllers and its own LocalCluster.

    Not thread-safe: start and stop from one thread.
    """

    def __init__(self, bin_dir: Path | None = None, ready_timeout: float = 180.0,
                 lock_timeout: float = 1200.0, take_lock: bool = True):
        """`take_lock=False`: the caller holds the NodeLock already (to look
        at the machine before and after the node without another run
        starting in between)."""
        self.bin_dir = Path(bin_dir) if bin_dir else herald_bin()
        self.ready_timeout = ready_timeout
        self._lock = NodeLock(lock_timeout) if take_lock else None
        self.dir: Path | None = None
        self.cluster: LocalCluster | None = None
        self._procs: dict[str, subprocess.Popen] = {}
        self._sysctls: dict[str, str] = {}
        self.timings: dict[str, float] = {}

    # --- public --------------------------------------------------------------

    @property
    def containerd_socket(self) -> Path:
        return self.dir / "containerd" / "containerd.sock"

    def start(self) -> "LocalNode":
        if os.geteuid() != 0:
            raise NodeError("the local node needs root (containerd, kubelet, iptables)")
        for name in ("kubelet", "kube-proxy", "kube-scheduler", "kube-controller-manager", "pause"):
            if not (self.bin_dir / name).exists():
                raise NodeError(f"{self.bin_dir / name} is missing: run scripts/setup first")
        for path in (CONTAINERD, CTR, "/usr/sbin/runc", "/usr/lib/cni/bridge"):
            if not Path(path).exists():
                raise NodeError(f"{path} is missing: run scripts/setup first")
        t0 = time.monotonic()
        if self._lock is not None:
            self._lock.acquire()
        try:
            self.timings["lock"] = time.monotonic() - t0
            sweep()
            self.dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
            self.dir.chmod(0o755)
            self._sysctls = {k: _read_sysctl(k) for k in KUBELET_SYSCTLS}
            _run("ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo", "label", NODE_LABEL)
            self.cluster = LocalCluster(
                workdir=self.dir / "cluster", host=NODE_IP, service_accounts=True,
                apiserver_args=["--kubelet-preferred-address-types=InternalIP"])
            # PKI first: kube-apiserver's flags name the kubelet client
            # certificate, and the kubelet serves with one of the same CA.
            self.cluster.dir.mkdir(parents=True)
            self.cluster._make_pki()
            pki = self.cluster.dir / "pki"
            self.cluster.apiserver_args += [
                f"--kubelet-client-certificate={pki / 'admin.crt'}",
                f"--kubelet-client-key={pki / 'admin.key'}",
                f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            ]
            self.cluster.issue_certificate("kubelet-serving", f"/CN={NODE_NAME}",
                                           server_ips=[NODE_IP])
            self.cluster.start()
            self.timings["control plane"] = time.monotonic() - t0
            self._start_containerd()
            self._import_pause()
            self._start_kubelet()
            self._start_controllers()
            self._wait_node_ready()
            self.timings["ready"] = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops the pods, every process, and takes down what the node set up."""
        try:
            if self.cluster is not None and self.cluster._apiserver is not None:
                self._stop_pods()
            for name in ("kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"):
                self._terminate(name)
            if self.cluster is not None:
                self.cluster.stop()
            self._remove_remaining_containers()
            if "kube-proxy" in self._procs or self.dir is not None:
                _run(str(self.bin_dir / "kube-proxy"), "--cleanup", check=False)
            self._terminate("containerd")
        finally:
            sweep()
            for key, value in self._sysctls.items():
                _write_sysctl(key, value)
            self._sysctls = {}
            self._procs = {}
            self.dir = None
            self.cluster = None
            if self._lock is not None:
                self._lock.release()

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess:
        res = subprocess.run([str(self.bin_dir / "kubectl"), *args], input=input,
                             capture_output=True, text=True, env=self.cluster.env(),
                             timeout=timeout)
        if check and res.returncode != 0:
            raise NodeError(f"kubectl {' '.join(args)}: {res.stderr.strip()}")
        return res

    def ctr(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        return _run(CTR, "--address", str(self.containerd_socket), "--namespace", "k8s.io", *args,
                    check=check, timeout=timeout)

    def load_image(self, image: str) -> None:
        """Copies `image` from root's podman store into the node's containerd
        (pods name it as is, with imagePullPolicy Never)."""
        archive = self.dir / "image.tar"
        podman = [*([] if os.geteuid() == 0 else ["sudo"]), "podman", "--cgroup-manager=cgroupfs",
                  "--events-backend=file"]
        _run(*podman, "save", "--quiet", "--format", "oci-archive", "-o", str(archive), image,
             timeout=600)
        try:
            self.ctr("images", "import", str(archive))
        finally:
            archive.unlink(missing_ok=True)
        names = self.ctr("images", "ls", "-q").stdout.split()
        if image not in names:
            raise NodeError(f"{image} not among containerd's images after import: {names}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        try:
            text = (self.dir / f"{name}.log").read_text(errors="replace").splitlines()
        except (OSError, TypeError):
            return "(no log)"
        return "\n".join(text[-lines:])

    def __enter__(self) -> "LocalNode":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- processes --------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        with open(self.dir / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self._procs[name] = proc
        return proc

    def _terminate(self, name: str) -> None:
        proc = self._procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise NodeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    # --- containerd --------------------------------------------------------------

    def _start_containerd(self) -> None:
        d = self.dir / "containerd"
        (d / "cni").mkdir(parents=True)
        (d / "cni" / "10-herald.conflist").write_text(json.dumps({
            "cniVersion": "1.0.0",
            "name": NODE_NAME,
            "plugins": [{
                "type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
                "ipam": {"type": "host-local", "dataDir": str(d / "ipam"),
                         "ranges": [[{"subnet": POD_CIDR}]], "routes": [{"dst": "0.0.0.0/0"}]},
            }],
        }))
        # restrict_oom_score_adj: kubelet asks for oom_score_adj -998 for the
        # pause container, which a process without CAP_SYS_RESOURCE may not
        # set (runc then fails with "can't get final child's PID from pipe").
        (d / "config.toml").write_text(textwrap.dedent(f"""\
            version = 2
            root = "{d / 'root'}"
            state = "{d / 'state'}"
            [grpc]
              address = "{self.containerd_socket}"
            [ttrpc]
              address = "{d / 'containerd.sock.ttrpc'}"
            [debug]
              level = "warn"
            [plugins."io.containerd.grpc.v1.cri"]
              sandbox_image = "{PAUSE_IMAGE}"
              restrict_oom_score_adj = true
              netns_mounts_under_state_dir = true
              [plugins."io.containerd.grpc.v1.cri".containerd]
                snapshotter = "overlayfs"
                [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
                  runtime_type = "io.containerd.runc.v2"
                  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
                    SystemdCgroup = false
                    Root = "{d / 'runc'}"
              [plugins."io.containerd.grpc.v1.cri".cni]
                bin_dir = "/usr/lib/cni"
                conf_dir = "{d / 'cni'}"
            """))
        self._spawn("containerd", [CONTAINERD, "--config", str(d / "config.toml")])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self._check_alive()
            if self.containerd_socket.exists() and \
                    self.ctr("version", check=False, timeout=10).returncode == 0:
                return
            time.sleep(0.1)
        raise NodeError(f"containerd did not answer in 60s:\n{self.log_tail('containerd')}")

    def _import_pause(self) -> None:
        archive = self.dir / "pause.tar"
        archive.write_bytes(_pause_image_archive((self.bin_dir / "pause").read_bytes()))
        self.ctr("images", "import", str(archive))
        archive.unlink()

    # --- kubelet and the controllers ---------------------------------------------

    def _start_kubelet(self) -> None:
        d = self.dir / "kubelet"
        d.mkdir()
        pki = self.cluster.dir / "pki"
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "cgroupDriver": "cgroupfs",
            # This machine's cgroups may be v1, which kubelet refuses by default.
            "failCgroupV1": False,
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "podLogsDir": str(self.dir / "pod-logs"),
            "address": NODE_IP,
            "port": free_port(),
            "readOnlyPort": 0,
            "healthzPort": 0,
            "tlsCertFile": str(pki / "kubelet-serving.crt"),
            "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                               "x509": {"clientCAFile": str(pki / "ca.crt")}},
            "authorization": {"mode": "AlwaysAllow"},
            "clusterDomain": "cluster.local",
            "resolvConf": "/etc/resolv.conf",
            "enforceNodeAllocatable": [],
            # The images are imported, never pulled: never collect them, and
            # no eviction for a busy shared disk.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%"},
            "serializeImagePulls": False,
        }
        (d / "config.yaml").write_text(json.dumps(config))
        self._spawn("kubelet", [
            str(self.bin_dir / "kubelet"),
            f"--config={d / 'config.yaml'}",
            f"--kubeconfig={self.cluster.kubeconfig}",
            f"--root-dir={d / 'root'}",
            f"--cert-dir={d / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            "--v=1",
        ])

    def _start_controllers(self) -> None:
        pki = self.cluster.dir / "pki"
        kubeconfig = str(self.cluster.kubeconfig)
        self._spawn("kube-proxy", [
            str(self.bin_dir / "kube-proxy"),
            f"--kubeconfig={kubeconfig}",
            f"--hostname-override={NODE_NAME}",
            f"--cluster-cidr={POD_CIDR}",
            "--proxy-mode=iptables",
            # Leave the machine's conntrack settings and route_localnet alone.
            "--conntrack-max-per-core=0",
            "--conntrack-tcp-timeout-established=0",
            "--conntrack-tcp-timeout-close-wait=0",
            "--iptables-localhost-nodeports=false",
            "--nodeport-addresses=primary",
            f"--healthz-bind-address=127.0.0.1:{free_port()}",
            f"--metrics-bind-address=127.0.0.1:{free_port()}",
        ])
        self._spawn("kube-scheduler", [
            str(self.bin_dir / "kube-scheduler"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--secure-port=0",
        ])
        self._spawn("kube-controller-manager", [
            str(self.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--secure-port=0",
            # kube-root-ca.crt, which every projected service-account volume
            # holds.
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            "--use-service-account-credentials=false",
        ])

    def _wait_node_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            self._check_alive()
            status, node = self.cluster.request("GET", f"/api/v1/nodes/{NODE_NAME}")
            if status == 200:
                conds = {c["type"]: c for c in node.get("status", {}).get("conditions", [])}
                ready = conds.get("Ready", {})
                if ready.get("status") == "True":
                    # Pods are admitted once the default service account exists.
                    status, _ = self.cluster.request(
                        "GET", "/api/v1/namespaces/default/serviceaccounts/default")
                    if status == 200:
                        return
                    last = "no default service account yet"
                else:
                    last = f"Ready: {ready.get('reason')}: {ready.get('message')}"
            else:
                last = f"HTTP {status}"
            time.sleep(0.5)
        raise NodeError(f"node {NODE_NAME} not Ready after {self.ready_timeout}s ({last}):\n"
                        f"{self.log_tail('kubelet')}")

    # --- stopping --------------------------------------------------------------

    def _stop_pods(self) -> None:
        """Every pod deleted through the API, then stopped by the kubelet
        (which tears their networks down through CNI)."""
        if self._procs.get("kubelet") is None or self._procs["kubelet"].poll() is not None:
            return
        for name in ("kube-controller-manager", "kube-scheduler"):
            self._terminate(name)  # Nothing recreates them.
        self.kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=5",
                     "--wait=false", check=False)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, pods = self.cluster.request("GET", "/api/v1/pods")
            tasks = self.ctr("tasks", "ls", "-q", check=False, timeout=10).stdout.split()
            if status == 200 and not pods.get("items") and not tasks:
                return
            time.sleep(0.5)

    def _remove_remaining_containers(self) -> None:
        """What the kubelet did not stop: killed and removed through containerd."""
        if self.dir is None or not self.containerd_socket.exists() or \
                self._procs.get("containerd") is None or self._procs["containerd"].poll() is not None:
            return
        for task in self.ctr("tasks", "ls", "-q", check=False, timeout=10).stdout.split():
            self.ctr("tasks", "kill", "-a", "-s", "SIGKILL", task, check=False, timeout=10)
        time.sleep(0.5)
        for task in self.ctr("tasks", "ls", "-q", check=False, timeout=10).stdout.split():
            self.ctr("tasks", "delete", "-f", task, check=False, timeout=20)
        for c in self.ctr("containers", "ls", "-q", check=False, timeout=10).stdout.split():
            self.ctr("containers", "delete", c, check=False, timeout=20)


# --- the sweep ------------------------------------------------------------------

def sweep() -> None:
    """Takes down everything a node sets up on the machine: run at start (for
    a run that died) and at stop. Call it holding the node lock."""
    prefix = str(Path(tempfile.gettempdir()) / DIR_PREFIX)
    # Processes started for a node, the containers' shims (found by the
    # node's folder in their command line) and the containers' processes.
    for _ in range(3):
        pids = set(_pids_with_arg(prefix)) | set(_cgroup_pids())
        pids.discard(os.getpid())
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.3)
    # Mounts under a node's folder, deepest first.
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    mounts = [m.replace("\\040", " ") for m in mounts if m.startswith(prefix)]
    for m in sorted(set(mounts), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)
    for cg in _kubepods_cgroups():
        for sub in sorted(cg.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if sub.is_dir():
                _rmdir(sub)
        _rmdir(cg)
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            _remove_kube_chains(tool, table)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
    subprocess.run(["ip", "addr", "del", f"{NODE_IP}/32", "dev", "lo"], capture_output=True)
    for path in _stale_files():
        path.unlink(missing_ok=True)
    for d in (DEVICE_PLUGINS, DEVICE_PLUGINS.parent):
        try:
            d.rmdir()  # Only when empty.
        except OSError:
            pass
    for d in glob.glob(prefix + "*"):
        shutil.rmtree(d, ignore_errors=True)


def _stale_files() -> list[Path]:
    """Files a node leaves outside its folder: sockets of shims and of the
    kubelet that nothing listens on any more, and CNI's cached results for
    the node's network (and the loopback of the same sandboxes)."""
    listening = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8:
            listening.add(fields[7])
    found = []
    for path in [*SHIM_SOCKETS.glob("*"), DEVICE_PLUGINS / "kubelet.sock"]:
        if path.is_socket() and str(path) not in listening:
            found.append(path)
    for path in CNI_RESULTS.glob(f"{NODE_NAME}-*"):
        sandbox = path.name[len(NODE_NAME) + 1:].rsplit("-", 1)[0]
        found += [path, *CNI_RESULTS.glob(f"cni-loopback-{sandbox}-*")]
    return found


def leftovers() -> list[str]:
    """What of a node is on the machine now, one line each (nothing when
    no node runs and the last one was taken down)."""
    prefix = str(Path(tempfile.gettempdir()) / DIR_PREFIX)
    found = []
    pids = sorted((set(_pids_with_arg(prefix)) | set(_cgroup_pids())) - {os.getpid()})
    if pids:
        found.append(f"processes {pids}")
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    found += [f"mount {m}" for m in mounts if m.startswith(prefix)]
    found += [f"cgroup {cg}" for cg in _kubepods_cgroups()]
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            save = subprocess.run([f"{tool}-save", "-t", table], capture_output=True, text=True)
            found += [f"{tool} -t {table} chain {line[1:].split()[0]}"
                      for line in save.stdout.splitlines() if line.startswith(":KUBE-")]
    if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0:
        found.append(f"link {BRIDGE}")
    if f" {NODE_IP}/" in subprocess.run(["ip", "-o", "addr", "show", "dev", "lo"],
                                         capture_output=True, text=True).stdout:
        found.append(f"address {NODE_IP} on lo")
    found += [f"folder {d}" for d in glob.glob(prefix + "*")]
    found += [f"file {p}" for p in _stale_files()]
    return found


def _pids_with_arg(prefix: str) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmdline = (p / "cmdline").read_bytes()
        except OSError:
            continue
        if prefix.encode() in cmdline:
            pids.append(int(p.name))
    return pids


def _kubepods_cgroups() -> list[Path]:
    roots = [Path("/sys/fs/cgroup")] + [p for p in Path("/sys/fs/cgroup").iterdir() if p.is_dir()]
    return [r / "kubepods" for r in roots if (r / "kubepods").is_dir()]


def _cgroup_pids() -> list[int]:
    pids = []
    for cg in _kubepods_cgroups():
        for procs in cg.rglob("cgroup.procs"):
            try:
                pids += [int(x) for x in procs.read_text().split()]
            except OSError:
                pass
    return pids


def _rmdir(path: Path) -> None:
    for _ in range(20):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)  # Busy while its last processes exit.


def _remove_kube_chains(tool: str, table: str) -> None:
    """Kubelet's and kube-proxy's chains (KUBE-*) in one table: the rules
    that jump to them, then the chains."""
    save = subprocess.run([f"{tool}-save", "-t", table], capture_output=True, text=True)
    if save.returncode != 0:
        return
    chains = [line[1:].split()[0] for line in save.stdout.splitlines()
              if line.startswith(":KUBE-")]
    if not chains:
        return
    for line in save.stdout.splitlines():
        if line.startswith("-A ") and any(f"-j {c}" in line for c in chains) and \
                not line.split()[1].startswith("KUBE-"):
            subprocess.run([tool, "-t", table, *_split_rule("-D" + line[2:])], capture_output=True)
    for c in chains:
        subprocess.run([tool, "-t", table, "-F", c], capture_output=True)
    for c in chains:
        subprocess.run([tool, "-t", table, "-X", c], capture_output=True)


def _split_rule(rule: str) -> list[str]:
    import shlex
    return shlex.split(rule)


def _read_sysctl(key: str) -> str:
    try:
        return Path("/proc/sys", key).read_text().strip()
    except OSError:
        return ""


def _write_sysctl(key: str, value: str) -> None:
    if not value:
        return
    try:
        Path("/proc/sys", key).write_text(value + "\n")
    except OSError:
        pass


def _pause_image_archive(binary: bytes) -> bytes:
    """A `FROM scratch` image of one static binary, /pause, as a Docker
    archive that `ctr images import` reads."""
    def tar_bytes(members: list[tuple[str, bytes, int]]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name, data, mode in members:
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), mode, 0
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    layer = tar_bytes([("pause", binary, 0o755)])
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}"]},
    }).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": [PAUSE_IMAGE],
                            "Layers": ["layer.tar"]}]).encode()
    return tar_bytes([("config.json", config, 0o644), ("layer.tar", layer, 0o644),
                      ("manifest.json", manifest, 0o644)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start, print the kubeconfig path, run until Ctrl+C or SIGTERM")
    up.add_argument("--caller-holds-lock", action="store_true",
                    help="do not take the node lock: the process that runs this holds it")
    sub.add_parser("sweep", help="take down what a node that died left behind")
    args = parser.parse_args(argv)
    if args.command == "sweep":
        with NodeLock():
            sweep()
        return 0
    node = LocalNode(take_lock=not args.caller_holds_lock)

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        node.start()
        print(f"[herald] node ready in {node.timings['ready']:.1f}s", file=sys.stderr)
        print(f"export KUBECONFIG={node.cluster.kubeconfig}", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    except ClusterError as e:
        print(f"[herald] {e}", file=sys.stderr)
        return 1
    finally:
        node.stop()


if __name__ == "__main__":
    sys.exit(main())
