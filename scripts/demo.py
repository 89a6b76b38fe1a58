#!/usr/bin/env python3
"""Herald's demo: a local control plane, the sidecar and the minimal Python
example; an object applied with kubectl; what the handler did.

Run through scripts/demo, which installs and builds everything first.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "cluster"))
from localcluster import ClusterError, LocalCluster, herald_bin  # noqa: E402

BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def say(text: str) -> None:
    print(f"\n{BOLD}==> {text}{RESET}", flush=True)


def pump(proc: subprocess.Popen, prefix: str) -> None:
    def run():
        for line in proc.stdout:
            print(f"{DIM}{prefix}{RESET} {line.rstrip()}", flush=True)
    threading.Thread(target=run, daemon=True).start()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--once", action="store_true",
                        help="stop after showing the result instead of waiting for Ctrl+C")
    parser.add_argument("--sidecar", default=str(ROOT / "bazel-bin" / "server" / "herald"),
                        help="the herald binary (scripts/demo passes the release build's)")
    args = parser.parse_args()
    os.environ["PATH"] = f"{herald_bin()}{os.pathsep}{os.environ['PATH']}"
    work = Path(tempfile.mkdtemp(prefix="herald-demo-"))
    sock = work / "herald.sock"
    procs: list[tuple[str, subprocess.Popen]] = []
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    cluster = LocalCluster()
    try:
        say("Starting a local Kubernetes control plane (etcd and kube-apiserver on loopback)")
        t0 = time.monotonic()
        cluster.start()
        env = cluster.env()
        print(f"ready in {time.monotonic() - t0:.1f}s at {cluster.server}")

        def kubectl(*a: str, **kw) -> str:
            return subprocess.run(["kubectl", *a], env=env, check=True, capture_output=True,
                                  text=True, **kw).stdout

        say("kubectl apply -f k8s/crd.yaml  (the KopfExample resource)")
        print(kubectl("apply", "-f", str(ROOT / "k8s" / "crd.yaml")).strip())
        kubectl("wait", "--for=condition=Established", "--timeout=60s",
                "crd/kopfexamples.kopf.dev")

        say(f"Starting the Herald sidecar on unix:{sock}")
        print(subprocess.run([args.sidecar, "--version"], check=True, capture_output=True,
                             text=True).stdout.strip())
        sidecar = subprocess.Popen([args.sidecar, f"--socket={sock}"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        procs.append(("sidecar", sidecar))
        pump(sidecar, "[sidecar]")

        handlers = ROOT / "clients" / "python" / "examples" / "01-minimal" / "handlers.py"
        say(f"Starting the handler process: herald run {handlers.relative_to(ROOT)}")
        print(handlers.read_text().strip())
        client = subprocess.Popen([str(Path(sys.executable).parent / "herald"), "run",
                                   str(handlers), "--target", f"unix:{sock}"],
                                  env=dict(env, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        procs.append(("handler", client))
        pump(client, "[handler]")
        time.sleep(1)

        say("kubectl apply -f k8s/example-object.yaml")
        print(kubectl("apply", "-f", str(ROOT / "k8s" / "example-object.yaml")).strip())

        deadline = time.monotonic() + 60
        obj = {}
        while time.monotonic() < deadline and not stop.is_set():
            obj = json.loads(kubectl("get", "kopfexample", "kopf-example-1", "-o", "json"))
            if obj.get("status", {}).get("create_fn"):
                break
            time.sleep(0.2)
        else:
            print("the handler did not answer within 60s", file=sys.stderr)
            return 1
        time.sleep(1)  # Let the Event and the diff-base land.

        say("What the handler did: the status it wrote")
        print(json.dumps(obj["status"], indent=2))
        say("The Events it posted (kubectl get events)")
        print(kubectl("get", "events", "--field-selector",
                      "involvedObject.name=kopf-example-1").strip())
        say("What Herald keeps on the object (annotations)")
        ann = json.loads(kubectl("get", "kopfexample", "kopf-example-1", "-o", "json"))[
            "metadata"].get("annotations", {})
        print(json.dumps({k: v for k, v in ann.items() if k.startswith("herald.dev/")}, indent=2))

        if args.once:
            return 0
        say("Running. Try it yourself in another terminal:")
        print(f"  export KUBECONFIG={cluster.kubeconfig}")
        print(f"  export PATH={herald_bin()}:$PATH")
        print("  kubectl get kopfexamples")
        print(f"  grpcurl -plaintext unix://{sock} list")
        print("Press Ctrl+C to stop everything.")
        while not stop.is_set():
            stop.wait(1)
        return 0
    except KeyboardInterrupt:
        return 0
    except (ClusterError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or ""
        print(f"demo failed: {e} {detail}", file=sys.stderr)
        return 1
    finally:
        say("Stopping")
        for name, p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT if name == "handler" else signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
        cluster.stop()
        print("stopped: no process left behind")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
