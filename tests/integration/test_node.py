"""The local node (tests/cluster/node.py) itself: it runs a pod, and leaves
nothing on the machine, whether stopped or killed with its pods running (the
next start, or `node.py sweep`, takes down what a killed run left). Each test
holds the machine's node lock throughout, so that no other run's node is on
the machine when it looks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from heraldproc import ROOT, Proc, wait_for
from node import PAUSE_IMAGE, LocalNode, NodeLock, leftovers, sweep

POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "pause", "namespace": "default"},
    "spec": {"containers": [{"name": "pause", "image": PAUSE_IMAGE,
                             "imagePullPolicy": "Never"}]},
}


def _kubectl(kubeconfig: str, *args: str, input: str | None = None) -> str:
    env = dict(os.environ, KUBECONFIG=kubeconfig)
    res = subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True,
                         env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def _running(kubeconfig: str) -> bool:
    pod = json.loads(_kubectl(kubeconfig, "get", "pod", "pause", "-o", "json"))
    conds = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
    return conds.get("Ready") == "True"


def test_node_runs_a_pod_and_leaves_nothing_when_stopped():
    with NodeLock():
        sweep()
        _run_pod_and_stop()
        assert leftovers() == []


def _run_pod_and_stop():
    with LocalNode(take_lock=False) as node:
        kubeconfig = str(node.cluster.kubeconfig)
        nodes = json.loads(_kubectl(kubeconfig, "get", "nodes", "-o", "json"))["items"]
        assert [n["metadata"]["name"] for n in nodes] == ["herald-node"]
        _kubectl(kubeconfig, "apply", "-f", "-", input=json.dumps(POD))
        wait_for(lambda: _running(kubeconfig), timeout=60, what="the pause pod Ready",
                 describe=lambda: node.log_tail("kubelet"))
        assert any(line.startswith("link ") for line in leftovers()), leftovers()


def test_node_killed_with_a_running_pod_is_swept():
    with NodeLock():
        sweep()
        _kill_a_node_with_a_pod()
        # Its children die with it; the containers' shims and the pod's
        # processes, which containerd detaches, stay, as do the node's
        # network, cgroups and mounts.
        time.sleep(1)
        left = leftovers()
        assert any(line.startswith("processes ") for line in left), left
        assert any(line.startswith("cgroup ") for line in left), left
        sweep()
        assert leftovers() == []


def _kill_a_node_with_a_pod():
    up = Proc([sys.executable, str(ROOT / "tests" / "cluster" / "node.py"), "up",
               "--caller-holds-lock"], env=dict(os.environ))
    try:
        m = up.wait_for(r"export KUBECONFIG=(\S+)", timeout=240)
        kubeconfig = m.group(1)
        _kubectl(kubeconfig, "apply", "-f", "-", input=json.dumps(POD))
        wait_for(lambda: _running(kubeconfig), timeout=60, what="the pause pod Ready",
                 describe=lambda: "\n".join(up.lines[-20:]))
    finally:
        up.proc.send_signal(signal.SIGKILL)
        up.proc.wait()
