"""The engine and the handler stream: real handler processes speaking herald.v1
to the real sidecar against the real control plane."""

import json
import time

import pytest

from heraldproc import (HandlerProcess, apply_crd, apply_object, get_object, handler_specs, kubectl,
                        sidecar, wait_for)

pytestmark = pytest.mark.usefixtures("binaries")
GROUP = "engine.herald.dev"


def get(cluster, plural, name, ns="default"):
    return get_object(cluster, f"{plural}.{GROUP}", name, ns)


def handlers(plural, *specs):
    return handler_specs(f"{plural}.{GROUP}", *specs)


@pytest.fixture
def sock(tmp_path):
    return tmp_path / "herald.sock"


def test_create_update_delete_and_field_flows(cluster, sock, tmp_path):
    apply_crd(cluster, GROUP, "Flow", "flows")
    h = sidecar(cluster, sock)
    p = HandlerProcess(sock, {
        "handlers": handlers("flows",
                             {"id": "create_fn", "cause": "CAUSE_CREATE"},
                             {"id": "update_fn", "cause": "CAUSE_UPDATE"},
                             {"id": "field_fn", "cause": "CAUSE_FIELD", "field": "spec.size"},
                             {"id": "delete_fn", "cause": "CAUSE_DELETE"}),
        "steps": {
            "create_fn": [{"result": {"message": "created"},
                           "patch": {"metadata": {"labels": {"touched": "yes"}}},
                           "events": [{"reason": "Created", "message": "hello"}]}],
            "update_fn": [{"result": {"seen": True}}],
            "field_fn": [{"result": {"size": "changed"}}],
        },
    }, tmp_path)
    try:
        p.wait_record(event="registered")
        apply_object(cluster, GROUP, "Flow", "f1", spec={"size": 1})
        obj = wait_for(lambda: (o := get(cluster, "flows", "f1")).get("status", {}).get("create_fn") and o,
                       what="create_fn result")
        assert obj["status"]["create_fn"] == {"message": "created"}
        assert obj["metadata"]["labels"] == {"touched": "yes"}
        assert obj["metadata"]["finalizers"] == ["herald.dev/finalizer"]
        base = wait_for(lambda: get(cluster, "flows", "f1")["metadata"]["annotations"].get(
            "herald.dev/last-handled-configuration"), what="diff-base")
        assert json.loads(base)["spec"] == {"size": 1}
        events = json.loads(kubectl(cluster, "get", "events", "-o", "json",
                                    "--field-selector", "involvedObject.name=f1").stdout)
        assert [e["message"] for e in events["items"] if e["reason"] == "Created"] == ["hello"]

        kubectl(cluster, "patch", f"flows.{GROUP}", "f1", "--type=merge", "-p", '{"spec":{"size":2}}')
        wait_for(lambda: get(cluster, "flows", "f1").get("status", {}).get("field_fn"),
                 what="field_fn result")
        # As Kopf's on.field: at creation (the field appears) and on change.
        create, upd = [r for r in p.records("delivery") if r["handler"] == "field_fn"]
        assert (create["old"], create["new"]) == ("null", "1")
        assert (upd["old"], upd["new"]) == ("1", "2")
        assert json.loads(upd["diff"]) == [["change", [], 1, 2]]

        kubectl(cluster, "delete", f"flows.{GROUP}", "f1", "--wait=true", "--timeout=60s")
        p.wait_record(event="answered", handler="delete_fn")
    finally:
        p.kill()
        assert h.stop() == 0
    counts = {}
    for r in p.records("delivery"):
        counts[r["handler"]] = counts.get(r["handler"], 0) + 1
    # The label the create handler added is an update too: update_fn runs for
    # it and for the size change; field_fn at creation and for the size
    # change; the rest exactly once.
    assert counts == {"create_fn": 1, "update_fn": 2, "field_fn": 2, "delete_fn": 1}, counts
    ann = [line for line in h.lines if "protocol" in line.lower()]
    assert not ann, ann


def test_killed_handler_process_is_redelivered_and_succeeds_once(cluster, sock, tmp_path):
    apply_crd(cluster, GROUP, "Crash", "crashes")
    h = sidecar(cluster, sock)
    spec = handlers("crashes", {"id": "create_fn", "cause": "CAUSE_CREATE"})
    first = HandlerProcess(sock, {"handlers": spec, "steps": {"create_fn": [{"hang": True}]}}, tmp_path)
    try:
        first.wait_record(event="registered")
        apply_object(cluster, GROUP, "Crash", "c1")
        first.wait_record(event="hanging")
        first.kill()
        second = HandlerProcess(sock, {"handlers": spec,
                                       "steps": {"create_fn": [{"result": {"by": "second"}}]}}, tmp_path)
        try:
            second.wait_record(event="answered", handler="create_fn")
            wait_for(lambda: get(cluster, "crashes", "c1").get("status", {}).get("create_fn"),
                     what="result")
            time.sleep(1)
            assert len(second.records("delivery")) == 1
            assert len(second.records("answered")) == 1
        finally:
            second.kill()
    finally:
        assert h.stop() == 0
    assert get(cluster, "crashes", "c1")["status"]["create_fn"] == {"by": "second"}


def test_sidecar_killed_before_the_patch_reruns_only_unstored_successes(cluster, sock, tmp_path):
    apply_crd(cluster, GROUP, "Restart", "restarts")
    p = HandlerProcess(sock, {
        "handlers": handlers("restarts",
                             {"id": "a_fn", "cause": "CAUSE_CREATE"},
                             {"id": "b_fn", "cause": "CAUSE_CREATE"}),
        "steps": {"a_fn": [{"result": {"a": 1}}],
                  # 1: hang (sidecar killed), 2: retry later, 3: hang (killed
                  # again), 4: succeed.
                  "b_fn": [{"hang": True}, {"status": "TEMPORARY_ERROR", "delay": 1},
                           {"hang": True}, {"result": {"b": 1}}]},
    }, tmp_path)
    h = sidecar(cluster, sock)
    try:
        p.wait_record(event="registered")
        apply_object(cluster, GROUP, "Restart", "r1")
        p.wait_record(event="hanging", handler=None) if False else p.wait_record(event="delivery", handler="b_fn", step=0)
        # a_fn succeeded, b_fn hangs: nothing is stored yet. Kill.
        h.proc.kill()
        h.proc.wait()
        h = sidecar(cluster, sock)
        # After the restart a_fn runs exactly once more, b_fn retries later.
        p.wait_record(event="delivery", handler="b_fn", step=2, timeout=60)
        ann = get(cluster, "restarts", "r1")["metadata"]["annotations"]
        assert json.loads(ann["herald.dev/a_fn"])["success"] is True
        # Stored now: a second kill must not run a_fn again.
        h.proc.kill()
        h.proc.wait()
        h = sidecar(cluster, sock)
        wait_for(lambda: get(cluster, "restarts", "r1").get("status", {}).get("b_fn"),
                 timeout=60, what="b_fn result")
    finally:
        p.kill()
        assert h.stop() == 0
    a_runs = [r for r in p.records("delivery") if r["handler"] == "a_fn"]
    b_runs = [r for r in p.records("delivery") if r["handler"] == "b_fn"]
    assert len(a_runs) == 2, a_runs
    assert len(b_runs) == 4, b_runs
    obj = get(cluster, "restarts", "r1")
    assert obj["status"] == {"a_fn": {"a": 1}, "b_fn": {"b": 1}}
    assert "herald.dev/a_fn" not in obj["metadata"]["annotations"]


def test_two_processes_share_the_load_and_keep_per_object_order(cluster, sock, tmp_path):
    apply_crd(cluster, GROUP, "Share", "shares")
    script = {"credits": 3, "handlers": handlers(
        "shares", {"id": "create_fn", "cause": "CAUSE_CREATE"},
        {"id": "update_fn", "cause": "CAUSE_UPDATE"}),
        "steps": {"create_fn": [{"sleep": 0.2}], "update_fn": [{"sleep": 0.2}]}}
    h = sidecar(cluster, sock)
    a = HandlerProcess(sock, dict(script, process_name="a"), tmp_path)
    b = HandlerProcess(sock, dict(script, process_name="b"), tmp_path)
    try:
        a.wait_record(event="registered")
        b.wait_record(event="registered")
        names = [f"s{i}" for i in range(12)]
        for n in names:
            apply_object(cluster, GROUP, "Share", n, spec={"v": 1})
        for n in names:
            kubectl(cluster, "patch", f"shares.{GROUP}", n, "--type=merge", "-p", '{"spec":{"v":2}}')
        def all_done():
            done = {(r["handler"], r["object"]) for r in a.records("answered") + b.records("answered")}
            return all(("update_fn", f"default/{n}") in done for n in names)
        wait_for(all_done, timeout=90, what="every update handled")
    finally:
        a.kill()
        b.kill()
        assert h.stop() == 0
    assert a.records("delivery") and b.records("delivery"), "one process got nothing"
    # Per object: never two deliveries at once, and create before update.
    spans = {}
    for proc in (a, b):
        starts = {r["delivery_id"]: r for r in proc.records("delivery")}
        for r in proc.records("answered"):
            s = starts[r["delivery_id"]]
            spans.setdefault(s["object"], []).append((s["t"], r["t"], s["handler"]))
    for obj, items in spans.items():
        items.sort()
        for (s1, e1, _), (s2, _, _) in zip(items, items[1:]):
            assert s2 >= e1, f"{obj}: overlapping deliveries {items}"
        assert [i[2] for i in items][0] == "create_fn", items


def test_protocol_errors_are_answered_and_other_objects_keep_flowing(cluster, sock, tmp_path):
    apply_crd(cluster, GROUP, "Mixed", "mixeds")
    h = sidecar(cluster, sock, "--max_message_bytes=100000")
    p = HandlerProcess(sock, {
        "handlers": handlers(
            "mixeds",
            {"id": "bad_json", "cause": "CAUSE_CREATE", "labels": {"kind": {"match": "META_MATCH_EQUALS", "value": "json"}}},
            {"id": "bad_id", "cause": "CAUSE_CREATE", "labels": {"kind": {"match": "META_MATCH_EQUALS", "value": "id"}}},
            {"id": "too_big", "cause": "CAUSE_CREATE", "labels": {"kind": {"match": "META_MATCH_EQUALS", "value": "big"}}},
            {"id": "good", "cause": "CAUSE_CREATE", "labels": {"kind": {"match": "META_MATCH_EQUALS", "value": "good"}}},
            {"id": "unknown_resource", "resource": "nosuchthings", "cause": "CAUSE_CREATE"}),
        "steps": {"bad_json": [{"raw_patch_json": "{not json"}, {"result": {"fixed": True}}],
                  "bad_id": [{"delivery_id": "d-does-not-exist"}, {"result": {"fixed": True}}],
                  "too_big": [{"result_size": 200000}, {"result": {"fixed": True}}],
                  "good": [{"result": {"ok": True}}]},
    }, tmp_path)
    try:
        reg = p.wait_record(event="registered")
        # A resource that does not exist (yet) leaves its handler pending, and
        # holds nothing of other resources.
        assert "unknown resource 'nosuchthings'" in reg["pending"]["unknown_resource"]
        assert reg["rejected"] == {}
        for kind in ("json", "id", "big", "good"):
            obj = {"apiVersion": f"{GROUP}/v1", "kind": "Mixed",
                   "metadata": {"name": f"m-{kind}", "labels": {"kind": kind}}, "spec": {}}
            kubectl(cluster, "apply", "-f", "-", input=json.dumps(obj))
        e1 = p.wait_record(event="protocol_error", code="PROTOCOL_ERROR_CODE_MALFORMED_JSON")
        assert "patch_json is not a JSON object" in e1["message"]
        p.wait_record(event="protocol_error", code="PROTOCOL_ERROR_CODE_UNKNOWN_DELIVERY",
                      delivery_id="d-does-not-exist")
        e3 = p.wait_record(event="protocol_error", code="PROTOCOL_ERROR_CODE_MESSAGE_TOO_LARGE")
        assert "exceeds the limit of 100000 bytes" in e3["message"]
        wait_for(lambda: get(cluster, "mixeds", "m-good").get("status", {}).get("good"),
                 what="the good object handled")
        # The malformed outcome is recorded in the object's progress.
        ann = wait_for(lambda: get(cluster, "mixeds", "m-json")["metadata"]["annotations"].get("herald.dev/bad_json"),
                       what="progress of bad_json")
        assert "malformed outcome" in json.loads(ann)["message"]
        # The stream stayed up: the retries arrive on it and succeed. Unknown
        # and oversized answers left their deliveries in flight, so those
        # objects wait; the malformed one is retried after its backoff.
        assert not p.records("disconnected")
    finally:
        p.kill()
        assert h.stop() == 0
    assert "m-json" not in json.dumps(get(cluster, "mixeds", "m-json").get("status", {}))


def test_registrations_with_impossible_keys_or_field_paths_are_rejected(cluster, sock, tmp_path):
    h = sidecar(cluster, sock)
    p = HandlerProcess(sock, {"handlers": [
        {"id": "bad_label", "resource": "configmaps", "cause": "CAUSE_CREATE",
         "labels": {"not a/valid//key!!": {"match": "META_MATCH_PRESENT"}}},
        {"id": "bad_annotation", "resource": "configmaps", "cause": "CAUSE_CREATE",
         "annotations": {"example.com/": {"match": "META_MATCH_ABSENT"}}},
        {"id": "bad_field", "resource": "configmaps", "cause": "CAUSE_FIELD", "field": "spec..[x]"},
        {"id": "good", "resource": "configmaps", "cause": "CAUSE_FIELD", "field": "data.x",
         "labels": {"app.kubernetes.io/name": {"match": "META_MATCH_EQUALS", "value": "web"}}},
    ]}, tmp_path)
    try:
        reg = p.wait_record(event="registered")
        assert reg["accepted"] == ["good"], reg
        assert reg["rejected"] == {
            "bad_label": "label filter 'not a/valid//key!!': not a valid label key: more than one "
                         "'/' (a key is an optional DNS subdomain prefix and '/', then a name, "
                         "e.g. 'example.com/my-name')",
            "bad_annotation": "annotation filter 'example.com/': not a valid annotation key: "
                              "the name after '/' is empty",
            "bad_field": "field 'spec..[x]': segment 2 is empty (a field path is dot-separated "
                         "keys, e.g. spec.size)",
        }, reg["rejected"]
        h.wait_for(r"rejected handler 'bad_field': field 'spec\.\.\[x\]': segment 2 is empty")
    finally:
        p.kill()
        assert h.stop() == 0


def test_get_object_returns_deeply_nested_objects(cluster, sock, tmp_path):
    """Protobuf's JSON parser gives up on objects nested more than about 33
    levels; GetObject used to answer OK with an empty object for them."""
    import subprocess
    apply_crd(cluster, GROUP, "Deep", "deeps")

    def nested(levels):
        value = "bottom"
        for _ in range(levels):
            value = {"l": [1, value]}
        return value

    for name, levels in (("shallow", 10), ("deep", 40), ("deeper", 150)):
        obj = {"apiVersion": f"{GROUP}/v1", "kind": "Deep",
               "metadata": {"name": name, "namespace": "default"}, "spec": nested(levels)}
        kubectl(cluster, "create", "-f", "-", input=json.dumps(obj))
    h = sidecar(cluster, sock, f"--resource=deeps.{GROUP}")
    try:
        h.wait_for(r"LISTED deeps")
        for name, levels in (("shallow", 10), ("deep", 40), ("deeper", 150)):
            out = subprocess.run(
                ["grpcurl", "-plaintext", "-d",
                 json.dumps({"resource": "deeps", "namespace": "default", "name": name}),
                 f"unix://{sock}", "herald.v1.InspectionService/GetObject"],
                capture_output=True, text=True, timeout=30)
            assert out.returncode == 0, out.stderr
            obj = json.loads(out.stdout)["object"]
            assert obj["metadata"]["name"] == name
            assert obj["spec"] == nested(levels), name
    finally:
        assert h.stop() == 0


def test_start_order_reflection_and_health_with_grpcurl(cluster, sock, tmp_path):
    import subprocess
    apply_crd(cluster, GROUP, "Probe", "probes")
    # The handler process first: it waits for the sidecar.
    p = HandlerProcess(sock, {"handlers": handlers("probes", {"id": "create_fn", "cause": "CAUSE_CREATE"})},
                       tmp_path)
    try:
        p.wait_record(event="disconnected")
        h = sidecar(cluster, sock)
        try:
            p.wait_record(event="registered", timeout=30)
            grpcurl = ["grpcurl", "-plaintext", f"unix://{sock}"]
            out = subprocess.run(grpcurl + ["list"], capture_output=True, text=True, timeout=30)
            assert out.returncode == 0, out.stderr
            services = out.stdout.split()
            assert "herald.v1.HandlerService" in services
            assert "grpc.health.v1.Health" in services
            desc = subprocess.run(grpcurl + ["describe", "herald.v1.Outcome"],
                                  capture_output=True, text=True, timeout=30)
            assert "OUTCOME_STATUS" in desc.stdout or "OutcomeStatus" in desc.stdout, desc.stdout
            health = subprocess.run(grpcurl + ["grpc.health.v1.Health/Check"],
                                    capture_output=True, text=True, timeout=30)
            assert health.returncode == 0, health.stderr
            assert json.loads(health.stdout)["status"] == "SERVING", health.stdout
            apply_object(cluster, GROUP, "Probe", "p1")
            p.wait_record(event="answered", handler="create_fn")
        finally:
            assert h.stop() == 0
    finally:
        p.kill()


def test_the_rbac_manifest_is_enough_for_the_sidecar(cluster, sock, tmp_path):
    """The sidecar as the `herald` service account of k8s/rbac.yaml, without
    system:masters: watching, patching, status, finalizers and Events work."""
    from heraldproc import ROOT
    kubectl(cluster, "apply", "-f", str(ROOT / "k8s" / "crd.yaml"))
    kubectl(cluster, "wait", "--for=condition=Established", "--timeout=60s",
            "crd/kopfexamples.kopf.dev")
    kubectl(cluster, "apply", "-f", str(ROOT / "k8s" / "rbac.yaml"))
    cluster.set_tokens({"herald-sa-token": "system:serviceaccount:default:herald"},
                       groups="system:serviceaccounts,system:serviceaccounts:default")
    cluster.restart_apiserver()
    cfg = json.loads(cluster.kubeconfig.read_text())
    cfg["users"][0]["user"] = {"token": "herald-sa-token"}
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(cfg))
    h = sidecar(cluster, sock, f"--kubeconfig={path}")
    p = HandlerProcess(sock, {"handlers": [
        {"id": "create_fn", "resource": "kopfexamples", "cause": "CAUSE_CREATE"},
        {"id": "delete_fn", "resource": "kopfexamples", "cause": "CAUSE_DELETE"}],
        "steps": {"create_fn": [{"result": {"ok": True}, "events": [{"reason": "Made"}]}]}},
        tmp_path)
    try:
        p.wait_record(event="registered")
        kubectl(cluster, "apply", "-f", str(ROOT / "k8s" / "example-object.yaml"))
        wait_for(lambda: json.loads(kubectl(cluster, "get", "kopfexample", "kopf-example-1", "-o",
                                            "json").stdout).get("status", {}).get("create_fn"),
                 what="create_fn result")
        kubectl(cluster, "delete", "kopfexample", "kopf-example-1", "--wait=true", "--timeout=60s")
        p.wait_record(event="answered", handler="delete_fn")
    finally:
        p.kill()
        assert h.stop() == 0
        cluster.set_tokens({})
        cluster.restart_apiserver()
    # The API server's refusals, not any number that contains 403 (a pid).
    denied = [line for line in h.lines if "HTTP 403" in line or "forbidden" in line.lower()]
    assert not denied, denied


def test_every_inspection_call_with_grpcurl(cluster, sock, tmp_path):
    import subprocess
    apply_crd(cluster, GROUP, "Seen", "seens")
    h = sidecar(cluster, sock)
    p = HandlerProcess(sock, {"process_name": "inspected", "credits": 3, "handlers": handlers(
        "seens", {"id": "create_fn", "cause": "CAUSE_CREATE"},
        {"id": "tick", "cause": "CAUSE_TIMER",
         "timer": {"interval": "600s", "initialDelay": "600s"}}),
        "steps": {"create_fn": [{"status": "TEMPORARY_ERROR", "message": "not yet", "delay": 600,
                                 "memo_patch": {"note": "kept by the sidecar"}}]}}, tmp_path)

    def grpcurl(method, body=None):
        args = ["grpcurl", "-plaintext"]
        if body is not None:
            args += ["-d", json.dumps(body)]
        out = subprocess.run(args + [f"unix://{sock}", f"herald.v1.InspectionService/{method}"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    try:
        p.wait_record(event="registered")
        for name, app in (("s1", "a"), ("s2", "b")):
            obj = {"apiVersion": f"{GROUP}/v1", "kind": "Seen",
                   "metadata": {"name": name, "labels": {"app": app}}, "spec": {"n": 1}}
            kubectl(cluster, "apply", "-f", "-", input=json.dumps(obj))
        wait_for(lambda: len(p.records("answered")) == 2, what="both answered")
        wait_for(lambda: "herald.dev/create_fn" in get(cluster, "seens", "s1")["metadata"].get(
            "annotations", {}), what="progress stored")

        status = grpcurl("GetStatus")
        assert status["ready"] is True and status["annotation_prefix"] == "herald.dev"
        assert status["api_server"].startswith("https://127.0.0.1:")

        res = grpcurl("ListResources")["resources"]
        assert [(r["resource"]["plural"], r["state"], r["object_count"]) for r in res] == \
            [("seens", "WATCH_STATE_WATCHING", "2")]

        listed = grpcurl("ListObjects", {"resource": "seens", "label_selector": "app=a"})
        assert [o["metadata"]["name"] for o in listed["objects"]] == ["s1"]
        assert listed["objects"][0]["spec"] == {"n": 1}  # JSON, not base64.
        # kubectl's -l syntax: sets, negations, existence.
        both = grpcurl("ListObjects", {"resource": "seens", "label_selector": "app in (a,b)"})
        assert [o["metadata"]["name"] for o in both["objects"]] == ["s1", "s2"]
        not_a = grpcurl("ListObjects", {"resource": "seens",
                                        "label_selector": "app notin (a), !tier, app"})
        assert [o["metadata"]["name"] for o in not_a["objects"]] == ["s2"]
        bad = subprocess.run(["grpcurl", "-plaintext", "-d",
                              json.dumps({"resource": "seens", "label_selector": "=,=,!"}),
                              f"unix://{sock}", "herald.v1.InspectionService/ListObjects"],
                             capture_output=True, text=True, timeout=30)
        assert bad.returncode != 0 and "InvalidArgument" in bad.stderr, bad.stderr
        assert ('label_selector "=,=,!": at column 1: found \'=\', expected a key or \'!\''
                in bad.stderr), bad.stderr
        page = grpcurl("ListObjects", {"resource": f"Seen.{GROUP}", "page_size": 1})
        assert len(page["objects"]) == 1 and page["next_page_token"] == "1"

        one = grpcurl("GetObject", {"resource": "seens", "namespace": "default", "name": "s1"})
        assert one["object"]["metadata"]["name"] == "s1"
        assert one["memo"] == {"note": "kept by the sidecar"}
        [progress] = one["progress"]
        assert progress["handler_id"] == "create_fn" and progress["retries"] == 1
        assert progress["message"] == "not yet" and progress["purpose"] == "CAUSE_CREATE"

        handlers_by_id = {h["handler_id"]: h for h in grpcurl("ListHandlers")["handlers"]}
        handler = handlers_by_id["create_fn"]
        assert handler["process_count"] == 1
        assert handler["deliveries"] == "2" and handler["temporary_failures"] == "2"
        # Delivery-to-outcome latency, as durations ("0.002s").
        assert handler["latency_p50"].endswith("s") and handler["latency_p99"].endswith("s")
        assert float(handler["latency_p50"][:-1]) <= float(handler["latency_p99"][:-1]) < 30

        # Both objects wait for their retry in 600 s; their timers too.
        queues = grpcurl("ListQueues", {"filter": {"resource": "seens"}})
        assert queues["total"] == 2
        assert sorted(q["object"]["name"] for q in queues["queues"]) == ["s1", "s2"]
        assert all("wake_at" in q and not q.get("pending") for q in queues["queues"])
        assert grpcurl("ListQueues", {"filter": {"name": "s1"}, "limit": 1})["total"] == 1
        timers = grpcurl("ListTimers", {"filter": {"namespace": "default"}})["timers"]
        assert sorted((t["object"]["name"], t["handler_id"]) for t in timers) == \
            [("s1", "tick"), ("s2", "tick")]
        assert all(t["next_run"] > status["started"] for t in timers)
        assert grpcurl("ListDaemons").get("daemons", []) == []

        # The live stream: a new object's delivery and outcome as they happen.
        watch = subprocess.Popen(
            ["grpcurl", "-plaintext", "-d", json.dumps({"handler_id": "create_fn"}),
             f"unix://{sock}", "herald.v1.InspectionService/WatchDeliveries"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            seen = []

            def read_events():
                # grpcurl prints each message as indented JSON as it arrives.
                import threading
                lines = []
                threading.Thread(target=lambda: lines.extend(watch.stdout), daemon=True).start()
                decoder = json.JSONDecoder()
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and len(seen) < 2:
                    time.sleep(0.2)
                    text, seen[:] = "".join(lines).strip(), []
                    while text:
                        try:
                            obj, end = decoder.raw_decode(text)
                        except ValueError:
                            break
                        seen.append(obj)
                        text = text[end:].strip()
            time.sleep(1)  # Subscribed by then.
            obj = {"apiVersion": f"{GROUP}/v1", "kind": "Seen",
                   "metadata": {"name": "s3", "labels": {"app": "c"}}, "spec": {"n": 3}}
            kubectl(cluster, "apply", "-f", "-", input=json.dumps(obj))
            read_events()
            assert [(e["kind"], e["object"]["name"], e["handler_id"]) for e in seen] == \
                [("delivery", "s3", "create_fn"), ("outcome", "s3", "create_fn")]
            assert seen[1]["status"] in ("success", "temporary_error")
            assert seen[0]["delivery_id"] == seen[1]["delivery_id"] and "latency" in seen[1]
        finally:
            watch.kill()
            watch.wait()

        unknown = subprocess.run(["grpcurl", "-plaintext", "-d", '{"name": "nope"}',
                                  f"unix://{sock}", "herald.v1.InspectionService/GetIndex"],
                                 capture_output=True, text=True, timeout=30)
        assert unknown.returncode != 0 and "no index named 'nope'" in unknown.stderr

        [proc] = grpcurl("ListProcesses")["processes"]
        assert proc["process_name"] == "inspected" and proc["credits"] == 3
        assert proc["handler_ids"] == ["create_fn", "tick"]

        missing = subprocess.run(["grpcurl", "-plaintext", "-d", '{"resource": "nope"}',
                                  f"unix://{sock}", "herald.v1.InspectionService/ListObjects"],
                                 capture_output=True, text=True, timeout=30)
        assert missing.returncode != 0 and "is not watched" in missing.stderr
    finally:
        p.kill()
        assert h.stop() == 0


def test_raw_event_handlers_changes_reach_the_object(cluster, sock, tmp_path):
    apply_crd(cluster, GROUP, "Spy", "spies")
    h = sidecar(cluster, sock)
    label = {"metadata": {"labels": {"seen": "yes"}}}
    p = HandlerProcess(sock, {
        "handlers": handlers("spies", {"id": "event_fn", "cause": "CAUSE_EVENT"}),
        # Every event answers with the same label patch (a no-op once
        # applied); the first one also posts an Event.
        "steps": {"event_fn": [{"patch": label, "status_patch": {"spied": True},
                                "events": [{"reason": "Spied", "message": "seen"}]},
                               {"patch": label}]},
    }, tmp_path)
    try:
        p.wait_record(event="registered")
        apply_object(cluster, GROUP, "Spy", "sp1")
        obj = wait_for(lambda: (o := get(cluster, "spies", "sp1"))["metadata"].get("labels")
                       and o.get("status") and o, what="the event handler's patch")
        assert obj["metadata"]["labels"] == {"seen": "yes"}
        assert obj["status"] == {"spied": True}
        assert not any(k.startswith("herald.dev/")
                       for k in obj["metadata"].get("annotations", {})), obj["metadata"]
        wait_for(lambda: [e for e in json.loads(kubectl(
            cluster, "get", "events", "-o", "json",
            "--field-selector", "involvedObject.name=sp1").stdout)["items"]
            if e["reason"] == "Spied"], what="the event handler's Event")
        assert not p.records("protocol_error")
        # The deleted object cannot take the patch: the process hears why.
        kubectl(cluster, "delete", f"spies.{GROUP}", "sp1", "--wait=true", "--timeout=60s")
        err = p.wait_record(event="protocol_error", code="PROTOCOL_ERROR_CODE_PATCH_REJECTED")
        assert "event_fn" in err["message"] and "gone" in err["message"], err
    finally:
        p.kill()
        assert h.stop() == 0


def test_create_handler_with_a_field_and_value_fires_on_its_value(cluster, sock, tmp_path):
    apply_crd(cluster, GROUP, "Sized", "sizeds")
    h = sidecar(cluster, sock)
    hid = "create_fn/spec.size"  # As Kopf names a handler with a field.
    p = HandlerProcess(sock, {
        "handlers": handlers("sizeds", {
            "id": hid, "cause": "CAUSE_CREATE", "field": "spec.size",
            "value_filter": {"match": "VALUE_MATCH_EQUALS", "value_json": "3"}}),
        "steps": {hid: [{"result": {"size": 3}}]},
    }, tmp_path)
    try:
        reg = p.wait_record(event="registered")
        assert reg["rejected"] == {} and reg["accepted"] == [hid], reg
        apply_object(cluster, GROUP, "Sized", "small", spec={"size": 1})
        apply_object(cluster, GROUP, "Sized", "big", spec={"size": 3})
        wait_for(lambda: get(cluster, "sizeds", "big").get("status", {}).get(hid),
                 what="the create handler's result")
        # The other object was handled too (its diff-base is stored), with
        # no call: its size is not 3.
        wait_for(lambda: "herald.dev/last-handled-configuration" in
                 get(cluster, "sizeds", "small")["metadata"].get("annotations", {}),
                 what="small's diff-base")
        [d] = p.records("delivery")
        assert d["object"] == "default/big" and d["cause"] == "CAUSE_CREATE", d
        # Old and new narrowed to the field.
        assert (d["old"], d["new"]) == ("null", "3"), d
    finally:
        p.kill()
        assert h.stop() == 0
