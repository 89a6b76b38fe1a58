"""Handlers whose resource cannot be resolved yet are pending, never rejected:
a group that answers 503 (as groups do while kube-apiserver restarts) makes
a handler wait, and it is served once its resource resolves."""

import json
import subprocess

import pytest

from heraldproc import (HandlerProcess, apply_crd, apply_object, get_object, kubectl, sidecar,
                        wait_for)

pytestmark = pytest.mark.usefixtures("binaries")
GROUP = "pending.herald.dev"


def broken_api_service(cluster, group: str) -> None:
    """An aggregated API for `group` whose service does not exist: its
    discovery answers 503, like a group of an API server that is starting."""
    svc = {
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": f"v1.{group}"},
        "spec": {"group": group, "version": "v1", "groupPriorityMinimum": 1000,
                 "versionPriority": 15, "insecureSkipTLSVerify": True,
                 "service": {"namespace": "default", "name": "no-such-service"}},
    }
    kubectl(cluster, "apply", "-f", "-", input=json.dumps(svc))


def inspect(sock, method):
    out = subprocess.run(["grpcurl", "-plaintext", f"unix://{sock}",
                          f"herald.v1.InspectionService/{method}"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_handler_whose_group_answers_503_is_pending_then_served(cluster, tmp_path):
    sock = tmp_path / "herald.sock"
    broken_api_service(cluster, GROUP)
    wait_for(lambda: kubectl(cluster, "get", "--raw", f"/apis/{GROUP}/v1",
                             check=False).returncode != 0, what="the group to answer 503")
    # A resource it can watch, listed at once: only the pending handler keeps
    # the sidecar from being ready.
    h = sidecar(cluster, sock, "--resource=configmaps")
    h.wait_for(r"listed \d+ object")
    p = HandlerProcess(sock, {
        "handlers": [{"id": "create_fn", "cause": "CAUSE_CREATE",
                      "resource": f"lates.{GROUP}"}],
        "steps": {"create_fn": [{"result": {"served": True}}]},
    }, tmp_path)
    try:
        reg = p.wait_record(event="registered")
        # Accepted and pending, not rejected.
        assert reg["rejected"] == {}
        assert reg["accepted"] == ["create_fn"]
        assert f"discovery of {GROUP}/v1 failed" in reg["pending"]["create_fn"]
        h.wait_for(r"handler 'create_fn' is pending: cannot resolve")
        handlers = inspect(sock, "ListHandlers")["handlers"]
        assert [x["handler_id"] for x in handlers] == ["create_fn"]
        assert "cannot resolve" in handlers[0]["pending_reason"]
        assert handlers[0]["resource_name"] == f"lates.{GROUP}"
        # Not ready while a handler is pending: GetStatus says what /readyz does.
        assert not inspect(sock, "GetStatus").get("ready", False)

        # The group comes back (here: the CRD takes the group over).
        kubectl(cluster, "delete", "apiservice", f"v1.{GROUP}")
        apply_crd(cluster, GROUP, "Late", "lates")
        h.wait_for(r"handler\(s\) create_fn are served from now on", timeout=60)
        apply_object(cluster, GROUP, "Late", "l1")
        obj = wait_for(lambda: (o := get_object(cluster, f"lates.{GROUP}", "l1"))
                       .get("status", {}).get("create_fn") and o,
                       what="create_fn's result", timeout=60)
        assert obj["status"]["create_fn"] == {"served": True}
        handlers = inspect(sock, "ListHandlers")["handlers"]
        assert "pending_reason" not in handlers[0]
        assert handlers[0]["resource"]["plural"] == "lates"
        assert inspect(sock, "GetStatus")["ready"] is True
    finally:
        p.kill()
        kubectl(cluster, "delete", "apiservice", f"v1.{GROUP}", "--ignore-not-found", check=False)
        assert h.stop() == 0


def test_an_index_flag_for_a_resource_applied_later_waits_for_it(cluster, tmp_path):
    group = "later.herald.dev"
    sock = tmp_path / "herald.sock"
    h = sidecar(cluster, sock, f"--index=by_app=idxs.{group}:label:app")
    try:
        h.wait_for(r"handler 'by_app' is pending: unknown resource 'idxs.later.herald.dev'")
        apply_crd(cluster, group, "Idx", "idxs")
        obj = {"apiVersion": f"{group}/v1", "kind": "Idx",
               "metadata": {"name": "i1", "namespace": "default", "labels": {"app": "web"}},
               "spec": {}}
        kubectl(cluster, "apply", "-f", "-", input=json.dumps(obj))

        def index():
            out = subprocess.run(["grpcurl", "-plaintext", "-d", '{"name": "by_app"}',
                                  f"unix://{sock}", "herald.v1.InspectionService/GetIndex"],
                                 capture_output=True, text=True, timeout=30)
            return out.returncode == 0 and json.loads(out.stdout)
        got = wait_for(lambda: (i := index()) and "web" in json.dumps(i) and i,
                       what="the index filled", timeout=60)
        assert "i1" in json.dumps(got)
    finally:
        assert h.stop() == 0


def test_registration_while_the_api_server_restarts_loses_no_create(cluster, tmp_path):
    """The handler process registers while kube-apiserver is down: its
    handlers are pending (never rejected), and an object created once the
    API server is back gets every handler, the create one included."""
    group = "restart.herald.dev"
    apply_crd(cluster, group, "Boot", "boots")
    sock = tmp_path / "herald.sock"
    h = sidecar(cluster, sock)
    p = None
    try:
        h.wait_for(r"handler stream listening")
        cluster.stop_apiserver()
        try:
            p = HandlerProcess(sock, {
                "handlers": [{"id": "create_fn", "cause": "CAUSE_CREATE", "resource": f"boots.{group}"},
                             {"id": "delete_fn", "cause": "CAUSE_DELETE", "resource": f"boots.{group}"}],
                "steps": {"create_fn": [{"result": {"created": True}}]},
            }, tmp_path)
            reg = p.wait_record(event="registered")
        finally:
            cluster.start_apiserver()
        assert reg["rejected"] == {}
        assert sorted(reg["pending"]) == ["create_fn", "delete_fn"]
        apply_object(cluster, group, "Boot", "b1")
        obj = wait_for(lambda: (o := get_object(cluster, f"boots.{group}", "b1"))
                       .get("status", {}).get("create_fn") and o,
                       what="create_fn's result", timeout=60)
        assert obj["status"]["create_fn"] == {"created": True}
        assert obj["metadata"]["finalizers"] == ["herald.dev/finalizer"]
    finally:
        if p:
            p.kill()
        assert h.stop() == 0
