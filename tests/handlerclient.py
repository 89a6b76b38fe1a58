#!/usr/bin/env python3
"""A scriptable handler process for Herald's integration tests.

It speaks herald.v1.HandlerService with plain grpcio (stubs generated from
proto/ into a temporary folder), registers the handlers of a JSON script, and
answers each delivery with the next step scripted for that handler and
object. Everything it does is printed as one JSON line on stdout, so tests can
assert on it.

    handlerclient.py --target unix:/tmp/herald.sock --script script.json

A script:

    {"process_name": "p1", "credits": 4,
     "handlers": [{"id": "create_fn", "resource": "kopfexamples",
                   "cause": "CAUSE_CREATE"}],
     "steps": {"create_fn": [{"status": "TEMPORARY_ERROR", "delay": 1},
                             {"status": "SUCCESS", "result": {"ok": true}}]}}

A step: status (an OutcomeStatus without its prefix), message, delay
(seconds), result, patch, status_patch, memo_patch, events ([{type, reason,
message}]), sleep (seconds before answering), "hang": true (never answer),
raw_patch_json (sent as is, for malformed outcomes), delivery_id (answer with
another id), set_credits (sent before the outcome). The last step of a list
repeats.

"registers": [{"credits": 0}, {"credits": 2}] registers with the first
overrides, and again on the same stream with the next ones each time a
protocol error answers a registration.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generate_stubs() -> Path:
    """Compiles proto/herald/v1 for Python into a cached temporary folder."""
    out = Path(tempfile.gettempdir()) / f"herald-pystubs-{os.getuid()}"
    stamp = out / ".stamp"
    protos = sorted((ROOT / "proto" / "herald" / "v1").glob("*.proto"))
    digest = str([(p.name, p.stat().st_mtime_ns) for p in protos])
    if stamp.exists() and stamp.read_text() == digest:
        return out
    tmp = Path(tempfile.mkdtemp(prefix="herald-pystubs-"))
    from grpc_tools import protoc
    import grpc_tools
    include = Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{ROOT / 'proto'}", f"-I{include}", f"--python_out={tmp}",
            f"--grpc_python_out={tmp}"] + [str(p) for p in protos]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed for " + " ".join(map(str, protos)))
    for pkg in (tmp / "herald", tmp / "herald" / "v1"):
        (pkg / "__init__.py").touch()
    (tmp / ".stamp").write_text(digest)
    if out.exists():
        subprocess.run(["rm", "-rf", str(out)], check=True)
    os.replace(tmp, out)
    return out


sys.path.insert(0, str(generate_stubs()))
import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from herald.v1 import handler_pb2 as pb  # noqa: E402
from herald.v1 import handler_pb2_grpc as pb_grpc  # noqa: E402
from herald.v1 import resource_pb2  # noqa: E402

_print_lock = threading.Lock()


def emit(**fields) -> None:
    fields.setdefault("pid", os.getpid())
    fields.setdefault("t", time.time())
    with _print_lock:
        print(json.dumps(fields), flush=True)


class Client:
    def __init__(self, target: str, script: dict):
        self.target = target
        self.script = script
        self.counters: dict[tuple[str, str], int] = {}
        self.outbox: list = []
        self.cond = threading.Condition()
        self.stopped = False

    def _register(self, overrides: dict):
        reg = pb.Register(process_name=self.script.get("process_name", f"pid-{os.getpid()}"),
                          client="herald-testclient/0",
                          credits=overrides.get("credits", self.script.get("credits", 4)))
        for h in self.script["handlers"]:
            json_format.ParseDict(h, reg.handlers.add())
        return pb.ConnectRequest(register=reg)

    def _requests(self):
        registers = list(self.script.get("registers", [{}]))
        self.registers_left = registers[1:]
        self.registered = False
        yield self._register(registers[0])
        while True:
            with self.cond:
                while not self.outbox and not self.stopped:
                    self.cond.wait(0.5)
                if self.stopped and not self.outbox:
                    return
                msg = self.outbox.pop(0)
            yield msg

    def send(self, msg) -> None:
        with self.cond:
            self.outbox.append(msg)
            self.cond.notify_all()

    def _answer(self, d) -> None:
        key = (d.handler_id, f"{d.object.namespace}/{d.object.name}")
        n = self.counters.get(key, 0)
        self.counters[key] = n + 1
        steps = self.script.get("steps", {}).get(d.handler_id) or [{"status": "SUCCESS"}]
        step = steps[min(n, len(steps) - 1)]
        emit(event="delivery", handler=d.handler_id, cause=resource_pb2.Cause.Name(d.cause),
             object=key[1], rv=d.object.resource_version, delivery_id=d.delivery_id,
             retry=d.retry, step=n,
             old=d.old_json, new=d.new_json, diff=d.diff_json, memo=d.memo_json,
             event_type=d.event_type)
        if step.get("hang"):
            emit(event="hanging", delivery_id=d.delivery_id)
            return
        if step.get("sleep"):
            time.sleep(step["sleep"])
        if "set_credits" in step:
            self.send(pb.ConnectRequest(set_credits=pb.SetCredits(credits=step["set_credits"])))
        o = pb.Outcome(delivery_id=step.get("delivery_id", d.delivery_id),
                       status=pb.OutcomeStatus.Value("OUTCOME_STATUS_" + step.get("status", "SUCCESS")),
                       message=step.get("message", ""))
        if "delay" in step:
            o.delay.FromMilliseconds(int(step["delay"] * 1000))
        if "result" in step:
            o.result_json = json.dumps(step["result"])
        if "result_size" in step:
            o.result_json = json.dumps("x" * step["result_size"])
        for field, key_name in (("patch_json", "patch"), ("status_patch_json", "status_patch"),
                                ("memo_patch_json", "memo_patch")):
            if key_name in step:
                setattr(o.changes, field, json.dumps(step[key_name]))
        if "raw_patch_json" in step:
            o.changes.patch_json = step["raw_patch_json"]
        for ev in step.get("events", []):
            o.changes.events.add(type=pb.EventType.Value("EVENT_TYPE_" + ev.get("type", "NORMAL")),
                                 reason=ev["reason"], message=ev.get("message", ""))
        self.send(pb.ConnectRequest(outcome=o))
        emit(event="answered", handler=d.handler_id, object=key[1],
             delivery_id=o.delivery_id, status=step.get("status", "SUCCESS"))

    def run(self) -> None:
        backoff = 0.2
        while True:
            self.stopped = False
            self.outbox.clear()
            try:
                channel = grpc.insecure_channel(self.target, options=[
                    ("grpc.max_receive_message_length", 64 << 20),
                    ("grpc.max_send_message_length", 64 << 20)])
                stub = pb_grpc.HandlerServiceStub(channel)
                for resp in stub.Connect(self._requests()):
                    backoff = 0.2
                    kind = resp.WhichOneof("message")
                    if kind == "registered":
                        self.registered = True
                        emit(event="registered", stream_id=resp.registered.stream_id,
                             accepted=list(resp.registered.accepted_handler_ids),
                             rejected={r.handler_id: r.reason for r in resp.registered.rejections},
                             pending={r.handler_id: r.reason for r in resp.registered.pending})
                    elif kind == "delivery":
                        threading.Thread(target=self._answer, args=(resp.delivery,),
                                         daemon=True).start()
                    elif kind == "outcome_ack":
                        emit(event="ack", delivery_id=resp.outcome_ack.delivery_id)
                    elif kind == "protocol_error":
                        e = resp.protocol_error
                        emit(event="protocol_error", code=pb.ProtocolErrorCode.Name(e.code),
                             delivery_id=e.delivery_id, message=e.message)
                        if not self.registered and self.registers_left:
                            self.send(self._register(self.registers_left.pop(0)))
                emit(event="stream_ended")
            except grpc.RpcError as e:
                emit(event="disconnected", code=str(e.code()), details=e.details())
            with self.cond:
                self.stopped = True
                self.cond.notify_all()
            time.sleep(backoff)
            backoff = min(backoff * 2, 2.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True)
    p.add_argument("--script", required=True)
    a = p.parse_args()
    Client(a.target, json.loads(Path(a.script).read_text())).run()


if __name__ == "__main__":
    main()
