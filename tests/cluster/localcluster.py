#!/usr/bin/env python3
"""A real local Kubernetes control plane: etcd and kube-apiserver on loopback.

It generates its own CA, serving and client certificates and a service-account
signing key, writes a kubeconfig with an admin user (group system:masters), and
waits until the API server answers /readyz and the `default` namespace exists.
Everything lives in one temporary folder that is removed on stop.

The servers listen on 127.0.0.1 (kube-apiserver on `host` when one is given),
on free ports chosen at start, and stop by
themselves: they are killed when the process that started them dies (Linux
parent-death signal), and `stop()` ends them in order and waits.

Use it from Python:

    with LocalCluster() as cluster:
        subprocess.run(["kubectl", "get", "ns"], env=cluster.env())

or from a shell:

    tests/cluster/localcluster.py up              # until Ctrl+C
    tests/cluster/localcluster.py run -- CMD ...  # KUBECONFIG set for CMD

The binaries come from $HERALD_BIN (default ~/.cache/herald/bin), where
scripts/setup builds them.
"""

from __future__ import annotations

import argparse
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def herald_bin() -> Path:
    """Where scripts/setup puts the tools it builds."""
    if "HERALD_BIN" in os.environ:
        return Path(os.environ["HERALD_BIN"])
    cache = os.environ.get("HERALD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "herald"
    )
    return Path(cache) / "bin"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: kill it when its parent dies.

    SIGKILL, not SIGTERM: a graceful kube-apiserver shutdown can take many
    seconds, and an orphaned test server has nothing worth saving.
    """
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.setpgrp()  # Ctrl+C in a terminal reaches the parent, which stops us in order.


class ClusterError(RuntimeError):
    """The control plane could not be started or reached."""


class LocalCluster:
    """etcd plus kube-apiserver on loopback, with certificates and a kubeconfig.

    Not thread-safe: start, stop and restart from one thread.
    """

    def __init__(self, workdir: str | os.PathLike | None = None, bin_dir: Path | None = None,
                 start_timeout: float = 90.0, log_to_stderr: bool = False,
                 host: str = "127.0.0.1", service_accounts: bool = False,
                 apiserver_args: list[str] | None = None):
        """`host`: the address kube-apiserver binds and advertises (in its
        serving certificate); pods reach it through the `kubernetes` Service
        only when it is not a loopback address. `service_accounts`: the
        ServiceAccount admission plugin on, so pods get projected tokens
        (a controller-manager must then create the namespaces' `default`
        service accounts). `apiserver_args`: more kube-apiserver flags."""
        self.bin_dir = Path(bin_dir) if bin_dir else herald_bin()
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="herald-cluster-"))
        self.start_timeout = start_timeout
        self.host = host
        self.service_accounts = service_accounts
        self.apiserver_args = list(apiserver_args or [])
        self.log_to_stderr = log_to_stderr
        self.etcd_port = 0
        self.etcd_peer_port = 0
        self.apiserver_port = 0
        self._etcd: subprocess.Popen | None = None
        self._apiserver: subprocess.Popen | None = None

    # --- public --------------------------------------------------------------

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.apiserver_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_port}"

    def env(self, base: dict | None = None) -> dict:
        """An environment with KUBECONFIG pointing at this cluster."""
        env = dict(os.environ if base is None else base)
        env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def start(self) -> "LocalCluster":
        for name in ("etcd", "kube-apiserver"):
            if not (self.bin_dir / name).exists():
                raise ClusterError(f"{self.bin_dir / name} is missing: run scripts/setup first")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._make_pki()
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        self.apiserver_port = free_port()
        self._write_kubeconfig()
        if not (self.dir / "tokens.csv").exists():
            self.set_tokens({})
        try:
            self._start_etcd()
            self.start_apiserver()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops both servers and removes the folder if this object made it."""
        self.stop_apiserver()
        self._terminate(self._etcd)
        self._etcd = None
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def start_apiserver(self) -> None:
        """Starts kube-apiserver (again) on the same port and waits until ready."""
        if self._apiserver and self._apiserver.poll() is None:
            return
        pki = self.dir / "pki"
        args = [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            f"--bind-address={self.host}",
            f"--advertise-address={self.host}",
            f"--secure-port={self.apiserver_port}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.0.0.0/24",
            f"--token-auth-file={self.dir / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=0",
        ]
        if not self.service_accounts:
            # No controller-manager runs here to create default service accounts.
            args.append("--disable-admission-plugins=ServiceAccount")
        args += self.apiserver_args
        self._apiserver = self._spawn("kube-apiserver", args)
        self._wait_ready()

    def set_tokens(self, tokens: dict[str, str], groups: str = "system:masters") -> None:
        """Static bearer tokens (token to user name), all in `groups`
        (comma-separated).

        Read by kube-apiserver at start: restart it for a change to count.
        """
        lines = [f'{token},{user},{user},"{groups}"' for token, user in tokens.items()]
        (self.dir / "tokens.csv").write_text("\n".join(lines) + "\n")

    def stop_apiserver(self) -> None:
        self._terminate(self._apiserver)
        self._apiserver = None

    def restart_apiserver(self) -> None:
        self.stop_apiserver()
        self.start_apiserver()

    def request(self, method: str, path: str, body: object | None = None,
                content_type: str = "application/json", timeout: float = 10.0):
        """One request to the API server as the admin user: (status, parsed JSON or text)."""
        conn = http.client.HTTPSConnection(self.host, self.apiserver_port,
                                           context=self._ssl_context(), timeout=timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read().decode()
            try:
                return resp.status, json.loads(raw)
            except ValueError:
                return resp.status, raw
        finally:
            conn.close()

    def compact_etcd(self) -> int:
        """Compacts etcd at its current revision; older watches get 410 Gone.

        Returns the revision compacted at.
        """
        rev = int(self._etcd_call("/v3/kv/range", {"key": "AA=="})["header"]["revision"])
        self._etcd_call("/v3/kv/compaction", {"revision": str(rev), "physical": True})
        return rev

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- internals -----------------------------------------------------------

    def _etcd_call(self, path: str, body: dict) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.etcd_port, timeout=10)
        try:
            conn.request("POST", path, body=json.dumps(body))
            resp = conn.getresponse()
            data = resp.read().decode()
            if resp.status != 200:
                raise ClusterError(f"etcd {path}: HTTP {resp.status}: {data}")
            return json.loads(data)
        finally:
            conn.close()

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        out = None if self.log_to_stderr else open(self.dir / f"{name}.log", "ab")
        try:
            return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        finally:
            if out is not None:
                out.close()

    @staticmethod
    def _terminate(proc: subprocess.Popen | None) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _log_tail(self, name: str, lines: int = 25) -> str:
        try:
            text = (self.dir / f"{name}.log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def _start_etcd(self) -> None:
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        args = [
            str(self.bin_dir / "etcd"),
            "--name=herald",
            f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=herald={peer}",
            "--listen-metrics-urls=",
            # A throwaway data folder: durability buys nothing here.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]
        self._etcd = self._spawn("etcd", args)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._etcd.poll() is not None:
                raise ClusterError(f"etcd exited with {self._etcd.returncode}:\n{self._log_tail('etcd')}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.etcd_port, timeout=2)
                conn.request("GET", "/health")
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                if resp.status == 200 and json.loads(body).get("health") == "true":
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise ClusterError(f"etcd not healthy after {self.start_timeout}s:\n{self._log_tail('etcd')}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self._apiserver.poll() is not None:
                raise ClusterError(f"kube-apiserver exited with {self._apiserver.returncode}:\n"
                                   f"{self._log_tail('kube-apiserver')}")
            try:
                status, body = self.request("GET", "/readyz", timeout=2)
                if status == 200:
                    status, body = self.request("GET", "/api/v1/namespaces/default", timeout=2)
                    if status == 200:
                        return
                last = f"HTTP {status}: {str(body)[:300]}"
            except (OSError, ssl.SSLError, http.client.HTTPException) as e:
                last = str(e)
            time.sleep(0.2)
        raise ClusterError(f"kube-apiserver not ready after {self.start_timeout}s ({last}):\n"
                           f"{self._log_tail('kube-apiserver')}")

    def _ssl_context(self) -> ssl.SSLContext:
        pki = self.dir / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return ctx

    def issue_certificate(self, name: str, subject: str, server_ips: list[str] | None = None) -> tuple[Path, Path]:
        """A key and a certificate signed by the cluster's CA, as pki/<name>.crt
        and pki/<name>.key: a client certificate for `subject`
        ("/O=group/CN=user"), or a serving one for `server_ips`."""
        pki = self.dir / "pki"
        if server_ips:
            ext = f"{name}.ext"
            (pki / ext).write_text(
                "subjectAltName=" + ",".join(f"IP:{ip}" for ip in server_ips) + "\n"
                "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n")
        else:
            ext = "client.ext"
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        self._openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
        self._openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                      "-CAcreateserial", "-out", f"{name}.crt", "-days", "7", "-extfile", ext)
        return pki / f"{name}.crt", pki / f"{name}.key"

    def _openssl(self, *args: str) -> None:
        res = subprocess.run(["openssl", *args], cwd=self.dir / "pki", capture_output=True, text=True)
        if res.returncode != 0:
            raise ClusterError(f"openssl {' '.join(args)} failed: {res.stderr.strip()}")

    def _make_pki(self) -> None:
        pki = self.dir / "pki"
        if (pki / "admin.crt").exists():
            return
        pki.mkdir(parents=True, exist_ok=True)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        self._openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "7",
                      "-subj", "/CN=herald-local-ca")
        (pki / "server.ext").write_text(textwrap.dedent("""\
            subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc{extra}
            extendedKeyUsage=serverAuth
            keyUsage=digitalSignature,keyEncipherment
            """).format(extra="" if self.host == "127.0.0.1" else f",IP:{self.host}"))
        (pki / "client.ext").write_text("extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n")
        for name, subj, ext in (("apiserver", "/CN=kube-apiserver", "server.ext"),
                                ("admin", "/O=system:masters/CN=herald-admin", "client.ext")):
            self._openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj)
            self._openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                          "-CAcreateserial", "-out", f"{name}.crt", "-days", "7", "-extfile", ext)
        self._openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sa.key")
        self._openssl("ec", "-in", "sa.key", "-pubout", "-out", "sa.pub")

    def _write_kubeconfig(self) -> None:
        pki = self.dir / "pki"
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "herald-local", "cluster": {
                "server": self.server, "certificate-authority": str(pki / "ca.crt")}}],
            "users": [{"name": "herald-admin", "user": {
                "client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")}}],
            "contexts": [{"name": "herald-local", "context": {
                "cluster": "herald-local", "user": "herald-admin", "namespace": "default"}}],
            "current-context": "herald-local",
        }
        self.kubeconfig.write_text(json.dumps(cfg, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start, print the kubeconfig path, run until Ctrl+C or SIGTERM")
    up.add_argument("--dir", help="keep the cluster's files here instead of a temporary folder")
    run = sub.add_parser("run", help="start, run a command with KUBECONFIG set, stop")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)

    cluster = LocalCluster(workdir=getattr(args, "dir", None))
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    t0 = time.monotonic()
    try:
        cluster.start()
        print(f"[herald] control plane ready in {time.monotonic() - t0:.1f}s at {cluster.server}",
              file=sys.stderr)
        if args.command == "up":
            print(f"export KUBECONFIG={cluster.kubeconfig}", flush=True)
            while True:
                time.sleep(3600)
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not cmd:
            parser.error("run needs a command after --")
        return subprocess.call(cmd, env=cluster.env())
    except KeyboardInterrupt:
        return 0 if args.command == "up" else 130
    except ClusterError as e:
        print(f"[herald] {e}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
