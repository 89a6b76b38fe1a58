"""Startup, cleanup and probe handlers (activities) as inspection counts them:
the real sidecar, a real handler process, grpcurl."""

import json
import signal
import subprocess
import urllib.request

import pytest

from heraldproc import HandlerProcess, sidecar

pytestmark = pytest.mark.usefixtures("binaries")


def list_handlers(sock):
    out = subprocess.run(["grpcurl", "-plaintext", f"unix://{sock}",
                          "herald.v1.InspectionService/ListHandlers"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return {h["handler_id"]: h for h in json.loads(out.stdout)["handlers"]}


def counts(handler):
    """(deliveries, successes, temporary, permanent); zeros are omitted in JSON."""
    return tuple(int(handler.get(k, "0")) for k in (
        "deliveries", "successes", "temporary_failures", "permanent_failures"))


def test_activity_handlers_are_counted(cluster, tmp_path):
    sock = tmp_path / "herald.sock"
    h = sidecar(cluster, sock, "--health_listen=127.0.0.1:0", "--stop_wait=60s")
    p = HandlerProcess(sock, {
        "handlers": [{"id": "startup_fn", "cause": "CAUSE_STARTUP"},
                     {"id": "probe_fn", "cause": "CAUSE_PROBE"},
                     {"id": "cleanup_fn", "cause": "CAUSE_CLEANUP"},
                     {"id": "slow_cleanup", "cause": "CAUSE_CLEANUP"}],
        "steps": {"startup_fn": [{"status": "TEMPORARY_ERROR", "delay": 0.1},
                                 {"result": {"ok": True}}],
                  "probe_fn": [{"result": {"alive": True}}],
                  "slow_cleanup": [{"sleep": 5}]},
    }, tmp_path)
    try:
        port = int(h.wait_for(r"/healthz and /readyz on .* \(port (\d+)\)").group(1))
        p.wait_record(event="registered")
        started = p.wait_record(event="answered", handler="startup_fn", status="SUCCESS")
        p.wait_record(event="ack", delivery_id=started["delivery_id"])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as r:
            assert r.status == 200 and json.loads(r.read()) == {"probe_fn": {"alive": True}}
        handlers = list_handlers(sock)
        assert counts(handlers["startup_fn"]) == (2, 1, 1, 0)
        assert counts(handlers["probe_fn"]) == (1, 1, 0, 0)
        assert counts(handlers["cleanup_fn"]) == (0, 0, 0, 0)

        # Cleanup handlers run while the sidecar stops; the slow one holds
        # the stop (and the inspection service) open meanwhile.
        h.proc.send_signal(signal.SIGTERM)
        cleaned = p.wait_record(event="answered", handler="cleanup_fn")
        p.wait_record(event="ack", delivery_id=cleaned["delivery_id"])
        p.wait_record(event="delivery", handler="slow_cleanup")
        handlers = list_handlers(sock)
        assert counts(handlers["cleanup_fn"]) == (1, 1, 0, 0)
        assert counts(handlers["slow_cleanup"]) == (1, 0, 0, 0)
        p.wait_record(event="answered", handler="slow_cleanup")
    finally:
        assert h.stop() == 0
        p.kill()
