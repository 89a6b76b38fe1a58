"""Index handlers with a real handler process and the real control plane."""

import collections
import json

import pytest

from heraldproc import HandlerProcess, apply_crd, apply_object, kubectl, sidecar, wait_for

pytestmark = pytest.mark.usefixtures("binaries")
GROUP = "indices.herald.dev"


@pytest.fixture
def sock(tmp_path):
    return tmp_path / "herald.sock"


def test_an_index_handler_runs_once_per_resource_version(cluster, sock, tmp_path):
    # Two fast timers write the status of each object: the answers to their
    # patches and the watch events of the changes interleave. Every new
    # state is indexed (status-only changes too, as in Kopf), never one twice.
    apply_crd(cluster, GROUP, "Tally", "tallies")
    resource = f"tallies.{GROUP}"
    h = sidecar(cluster, sock)
    p = HandlerProcess(sock, {
        "credits": 8,
        "handlers": [
            {"id": "by_name", "resource": resource, "cause": "CAUSE_INDEX"},
            {"id": "tick_a", "resource": resource, "cause": "CAUSE_TIMER",
             "timer": {"interval": "0.1s"}},
            {"id": "tick_b", "resource": resource, "cause": "CAUSE_TIMER",
             "timer": {"interval": "0.15s"}},
        ],
        "steps": {
            "by_name": [{"result": {"all": "x"}}],
            "tick_a": [{"status_patch": {"a": i}} for i in range(1000)],
            "tick_b": [{"status_patch": {"b": i}} for i in range(1000)],
        },
    }, tmp_path)
    names = ["t1", "t2"]
    try:
        p.wait_record(event="registered")
        for name in names:
            apply_object(cluster, GROUP, "Tally", name)

        def status_writes():
            out = []
            for name in names:
                obj = json.loads(kubectl(cluster, "get", resource, name, "-o", "json").stdout)
                s = obj.get("status", {})
                out.append(s.get("a", 0) + s.get("b", 0))
            return out

        wait_for(lambda: min(status_writes()) >= 30, timeout=30, what="30 status writes per object")
    finally:
        p.kill()
        assert h.stop() == 0
    per_rv = collections.Counter(
        (r["object"], r["rv"]) for r in p.records("delivery") if r["handler"] == "by_name")
    twice = {k: n for k, n in per_rv.items() if n > 1}
    assert not twice, f"indexed more than once: {twice}"
    for name in names:
        indexed = [rv for (obj, rv) in per_rv if obj == f"default/{name}"]
        assert len(indexed) > 1, f"{name}: status changes were not indexed ({indexed})"
