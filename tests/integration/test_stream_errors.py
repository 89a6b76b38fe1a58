"""Errors on the handler stream, as the handler process and the sidecar's log
see them: real handler processes (tests/handlerclient.py), the real sidecar,
the real control plane."""

import re

import pytest

from heraldproc import (HandlerProcess, apply_crd, apply_object, get_object, handler_specs, kubectl,
                        sidecar, wait_for)

pytestmark = pytest.mark.usefixtures("binaries")
GROUP = "streams.herald.dev"


def get(cluster, plural, name, ns="default"):
    return get_object(cluster, f"{plural}.{GROUP}", name, ns)


def handlers(plural, *specs):
    return handler_specs(f"{plural}.{GROUP}", *specs)


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


def test_refused_patches_and_credits_are_logged(cluster, sock, tmp_path):
    apply_crd(cluster, GROUP, "Refused", "refuseds")
    h = sidecar(cluster, sock)
    p = HandlerProcess(sock, {
        "handlers": handlers("refuseds", {"id": "create_fn", "cause": "CAUSE_CREATE"}),
        # A label key the API server refuses (422), and zero credits.
        "steps": {"create_fn": [{"set_credits": 0,
                                 "patch": {"metadata": {"labels": {"not a key!": "x"}}}},
                                {"status": "TEMPORARY_ERROR", "delay": 600}]},
    }, tmp_path)
    try:
        reg = p.wait_record(event="registered")
        apply_object(cluster, GROUP, "Refused", "x1")
        credits = p.wait_record(event="protocol_error", code="PROTOCOL_ERROR_CODE_INVALID_ARGUMENT")
        assert "set_credits: credits must be at least 1" in credits["message"], credits
        rejected = p.wait_record(event="protocol_error", code="PROTOCOL_ERROR_CODE_PATCH_REJECTED")
        assert "not a key!" in rejected["message"], rejected
        logged_error(h, reg["stream_id"], "INVALID_ARGUMENT", "none",
                     re.escape("set_credits: credits must be at least 1"))
        line = logged_error(h, reg["stream_id"], "PATCH_REJECTED",
                            f"'{rejected['delivery_id']}'" if rejected["delivery_id"] else "none",
                            "the patch of handler 'create_fn' for refuseds.v1.[a-z.]+ default/x1 was rejected: ").string
        assert "not a key!" in line, line
    finally:
        p.kill()
        assert h.stop() == 0


def test_a_message_over_grpcs_own_limit_is_logged(cluster, sock, tmp_path):
    apply_crd(cluster, GROUP, "Huge", "huges")
    # gRPC's own limit is 2 x 100000 + 1 MiB = 1248576 bytes.
    h = sidecar(cluster, sock, "--max_message_bytes=100000")
    p = HandlerProcess(sock, {
        "handlers": handlers("huges", {"id": "create_fn", "cause": "CAUSE_CREATE"}),
        "steps": {"create_fn": [{"result_size": 2_000_000}, {"result": {"ok": True}}]},
    }, tmp_path)
    try:
        reg = p.wait_record(event="registered")
        apply_object(cluster, GROUP, "Huge", "h1")
        delivery = p.wait_record(event="delivery", handler="create_fn")
        gone = p.wait_record(event="disconnected")
        assert gone["code"] == "StatusCode.RESOURCE_EXHAUSTED", gone
        # gRPC does not tell the sidecar the status; its line names the limit
        # and the status the process got.
        h.wait_for(rf"{re.escape(reg['stream_id'])} \(.*\): .*gRPC's own limit of 1248576 "
                   r"bytes .*RESOURCE_EXHAUSTED")
        h.wait_for(rf"{re.escape(reg['stream_id'])} disconnected; requeued its deliveries "
                   rf"in flight .*'{re.escape(delivery['delivery_id'])}'")
        # The process reconnects; the delivery comes again and succeeds.
        wait_for(lambda: get(cluster, "huges", "h1").get("status", {}).get("create_fn") == {"ok": True},
                 what="create_fn's result stored after the reconnect")
    finally:
        p.kill()
        assert h.stop() == 0
