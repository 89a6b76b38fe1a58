"""JSON logs: the sidecar with --log_format=json, and the Python client with
`herald run --log-format=json`, handling a real object on the real control
plane. Every line each writes must be JSON, and the handler's lines about the
object carry its namespace, name, resource and the handler's id as keys."""

import json
import sys
import time
from pathlib import Path

import pytest

from heraldproc import (HandlerProcess, Proc, apply_crd, apply_object, get_object, handler_specs,
                        sidecar, wait_for)

pytestmark = pytest.mark.usefixtures("binaries")
GROUP = "logs.herald.dev"
RESOURCE = f"loggeds.v1.{GROUP}"
# A message that JSON must escape: quotes, a backslash, a newline, a control
# character, and text beyond ASCII.
NASTY = 'say "hi" \\ there\nsecond line\x01 \u00fc\u2713'


def json_lines(proc: Proc) -> list[dict]:
    """Every line `proc` wrote, parsed; fails naming the first that is not
    one JSON object."""
    out = []
    with proc._cond:
        lines = list(proc.lines)
    for line in lines:
        try:
            parsed = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert isinstance(parsed, dict), line
        out.append(parsed)
    return out


def about(lines: list[dict], **keys) -> list[dict]:
    return [x for x in lines if all(x.get(k) == v for k, v in keys.items())]


def test_the_sidecars_json_lines_carry_the_object_and_the_handler(cluster, tmp_path):
    apply_crd(cluster, GROUP, "Logged", "loggeds")
    sock = tmp_path / "herald.sock"
    h = sidecar(cluster, sock, "--log_format=json")
    p = HandlerProcess(sock, {
        "handlers": handler_specs(f"loggeds.{GROUP}",
                                  {"id": "create_fn", "cause": "CAUSE_CREATE"},
                                  {"id": "flaky_fn", "cause": "CAUSE_CREATE"}),
        "steps": {
            "create_fn": [{"result": {"ok": True}}],
            "flaky_fn": [{"status": "TEMPORARY_ERROR", "message": NASTY, "delay": 1},
                         {"result": {"ok": True}}],
        },
    }, tmp_path)
    try:
        p.wait_record(event="registered")
        apply_object(cluster, GROUP, "Logged", "l1")
        wait_for(lambda: get_object(cluster, RESOURCE, "l1").get("status", {}).get("flaky_fn"),
                 what="flaky_fn's result", timeout=60)
        h.wait_for(r'"message":"handler flaky_fn succeeded"', timeout=30)
    finally:
        p.kill()
        assert h.stop() == 0
    lines = json_lines(h)
    assert {x["level"] for x in lines} <= {"debug", "info", "warning", "error"}
    assert all(set(x) >= {"time", "level", "logger", "message"} for x in lines)
    obj = {"namespace": "default", "name": "l1", "resource": RESOURCE}
    [done] = about(lines, message="handler create_fn succeeded")
    assert done == {"time": done["time"], "level": "info", "logger": "engine",
                    "message": "handler create_fn succeeded", **obj, "id": "create_fn"}
    [retry] = about(lines, id="flaky_fn", level="warning")
    assert retry["message"].startswith(f"handler flaky_fn failed temporarily: {NASTY}; retrying")
    assert {k: retry[k] for k in obj} == obj
    assert about(lines, message="handler flaky_fn succeeded", id="flaky_fn", **obj)
    # --log_events' lines (herald() adds it) have the object's keys too.
    added = about(lines, logger="event", **obj)
    assert added and added[0]["message"].startswith(f"ADDED {RESOURCE} default/l1 rv="), added
    # Lines about no object have no object keys; the stop is logged too.
    assert about(lines, logger="main", message="stopped")
    assert not [x for x in about(lines, logger="main") if "name" in x or "id" in x]


HANDLERS = f'''
import herald

@herald.on.create("{RESOURCE}")
def create_fn(logger, **_):
    logger.info({NASTY!r})
    return {{"ok": True}}
'''


def test_herald_runs_json_lines_carry_the_object_and_the_handler(cluster, tmp_path):
    apply_crd(cluster, GROUP, "Logged", "loggeds")
    sock = tmp_path / "herald.sock"
    h = sidecar(cluster, sock, "--log_format=json")
    path = tmp_path / f"handlers-{time.monotonic_ns()}.py"
    path.write_text(HANDLERS)
    client = Proc([str(Path(sys.executable).parent / "herald"), "run", str(path), "--target",
                   f"unix:{sock}", "--log-format=json"],
                  env=dict(cluster.env(), PYTHONUNBUFFERED="1"))
    try:
        h.wait_for(r"registered 1 handler", timeout=60)
        apply_object(cluster, GROUP, "Logged", "l2")
        client.wait_for(r'handler create_fn succeeded', timeout=60)
    finally:
        client.stop()
        assert h.stop() == 0
    lines = json_lines(client)
    obj = {"namespace": "default", "name": "l2", "resource": RESOURCE, "id": "create_fn"}
    logger = "herald.handlers.create_fn"
    [own] = about(lines, message=NASTY)
    assert own == {"time": own["time"], "level": "info", "logger": logger, "message": NASTY,
                   **obj}
    [done] = about(lines, message="handler create_fn succeeded")
    assert {k: done[k] for k in obj} == obj and done["logger"] == logger
    assert all(set(x) >= {"time", "level", "logger", "message"} for x in lines)
    json_lines(h)  # The sidecar's too.
