"""Errors on the handler stream, as the handler process and the sidecar's log
see them: real handler processes (tests/handlerclient.py), the real sidecar,
the real control plane."""

import json
import re

import pytest

from heraldproc import HandlerProcess, apply_crd, apply_object, kubectl, sidecar, wait_for

pytestmark = pytest.mark.usefixtures("binaries")
GROUP = "streams.herald.dev"


def get(cluster, plural, name, ns="default"):
    return json.loads(kubectl(cluster, "get", f"{plural}.{GROUP}", name, "-n", ns,
                              "-o", "json").stdout)


def handlers(plural, *specs):
    return [dict(s, resource=f"{plural}.{GROUP}") for s in specs]


@pytest.fixture
def sock(tmp_path):
    return tmp_path / "herald.sock"


def logged_error(h, stream_id, code, delivery, reason):
    """Waits for the sidecar's line about a protocol error it sent."""
    return h.wait_for(
        rf"{re.escape(stream_id)} \(.*\): sent protocol error PROTOCOL_ERROR_CODE_{code}"
        rf" \(delivery {re.escape(delivery)}\): .*{reason}", timeout=30)


def test_a_corrected_register_on_the_same_stream_is_served(cluster, sock, tmp_path):
    apply_crd(cluster, GROUP, "Reg", "regs")
    h = sidecar(cluster, sock)
    p = HandlerProcess(sock, {
        "registers": [{"credits": 0}, {"credits": 2}],
        "handlers": handlers("regs", {"id": "create_fn", "cause": "CAUSE_CREATE"}),
        "steps": {"create_fn": [{"result": {"ok": True}}]},
    }, tmp_path)
    try:
        err = p.wait_record(event="protocol_error")
        assert err["code"] == "PROTOCOL_ERROR_CODE_INVALID_ARGUMENT", err
        assert "credits must be at least 1" in err["message"], err
        reg = p.wait_record(event="registered")
        assert reg["accepted"] == ["create_fn"]
        apply_object(cluster, GROUP, "Reg", "r1")
        answered = p.wait_record(event="answered", handler="create_fn")
        p.wait_record(event="ack", delivery_id=answered["delivery_id"])
        wait_for(lambda: get(cluster, "regs", "r1").get("status", {}).get("create_fn") == {"ok": True},
                 what="create_fn's result stored")
        # One stream throughout, and the refusal is in the sidecar's log.
        assert not p.records("disconnected") and not p.records("stream_ended")
        logged_error(h, reg["stream_id"], "INVALID_ARGUMENT", "none",
                     "register: credits must be at least 1")
    finally:
        p.kill()
        assert h.stop() == 0
