"""Leader election: two sidecars with a handler process each, sharing one
Lease, against the real control plane.

Each handler process answers create_fn with {"by": <its replica>}, and prints
every delivery and answer as a JSON line (tests/handlerclient.py): that is
the ledger of handler calls, per replica, which the assertions read with the
objects as the API server keeps them. Each also serves a startup handler (the
leader's: run when a replica leads), a probe handler (run on a standby too,
for /healthz) and a cleanup handler (the leader's, at a graceful stop).

Durations are short (lease 6 s, renew deadline 4 s, retry period 1 s); the
bounds asserted come from them plus slack for process scheduling, never
tighter than the semantics allow: a standby takes an expired lease at most a
lease duration after it last saw the record change, which is up to a retry
period after the leader's last renewal, plus one retry period of polling.
"""

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from heraldproc import HandlerProcess, apply_crd, apply_object, get_object, handler_specs, kubectl, sidecar, wait_for

pytestmark = pytest.mark.usefixtures("binaries")
GROUP = "election.herald.dev"
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 6, 4, 1
# Process start-up, grpcurl polling and a loaded machine (2 shared cores).
SLACK = 3


def get(cluster, plural, name):
    return get_object(cluster, f"{plural}.{GROUP}", name)


class Replica:
    """A sidecar with --leader_elect and its handler process."""

    def __init__(self, cluster, tmp_path, name, lease, plural):
        self.name = name
        self.sock = tmp_path / f"{name}.sock"
        self.sidecar = sidecar(
            cluster, self.sock, "--leader_elect", f"--leader_elect_identity=herald-{name}",
            f"--leader_elect_lease_name={lease}", "--leader_elect_namespace=default",
            f"--leader_elect_lease_duration={LEASE_DURATION}s",
            f"--leader_elect_renew_deadline={RENEW_DEADLINE}s",
            f"--leader_elect_retry_period={RETRY_PERIOD}s", "--health_listen=127.0.0.1:0")
        self.port = int(self.sidecar.wait_for(r"/readyz on \S+ \(port (\d+)\)")[1])
        self.handler = HandlerProcess(self.sock, {
            "process_name": name,
            "handlers": handler_specs(f"{plural}.{GROUP}", {"id": "create_fn", "cause": "CAUSE_CREATE"})
            + [{"id": "startup_fn", "cause": "CAUSE_STARTUP"},
               {"id": "probe_fn", "cause": "CAUSE_PROBE"},
               {"id": "cleanup_fn", "cause": "CAUSE_CLEANUP"}],
            "steps": {"create_fn": [{"result": {"by": name}}],
                      "probe_fn": [{"result": {"alive": name}}]},
        }, tmp_path)
        self.handler.wait_record(event="registered")

    def status(self) -> dict:
        out = subprocess.run(["grpcurl", "-plaintext", "-emit-defaults", f"unix://{self.sock}",
                              "herald.v1.InspectionService/GetStatus"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["leader_election"]

    def leading(self) -> bool:
        return self.status()["leading"]

    def get(self, path) -> tuple:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, None

    def ready(self) -> int:
        return self.get("/readyz")[0]

    def master_status(self, lease) -> str:
        """leader_election_master_status{name=lease} from /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=30) as r:
            text = r.read().decode()
        prefix = f'leader_election_master_status{{name="{lease}"}} '
        return next((line[len(prefix):] for line in text.splitlines()
                     if line.startswith(prefix)), "")

    def activities(self, handler) -> int:
        """Deliveries of an activity handler to this replica's process."""
        return sum(1 for r in self.handler.records("delivery") if r["handler"] == handler)

    def handled(self) -> set:
        """Objects whose create_fn this replica's process answered with success."""
        return {r["object"] for r in self.handler.records("answered")
                if r["handler"] == "create_fn" and r["status"] == "SUCCESS"}

    def delivered(self) -> list:
        """Objects delivered to create_fn."""
        return [r["object"] for r in self.handler.records("delivery")
                if r["handler"] == "create_fn"]

    def kill(self) -> None:
        for p in (self.sidecar, self.handler):
            if p.proc.poll() is None:
                p.proc.kill()
            p.proc.wait()


def two_replicas(cluster, tmp_path, plural, lease):
    """`a` started first and leading, then `b` standing by."""
    a = Replica(cluster, tmp_path, "a", lease, plural)
    wait_for(a.leading, timeout=30, what="a leads")
    b = Replica(cluster, tmp_path, "b", lease, plural)
    wait_for(lambda: b.status()["holder"] == "herald-a", timeout=30, what="b sees a as the holder")
    return a, b


def create(cluster, plural, kind, names):
    for n in names:
        apply_object(cluster, GROUP, kind, n, spec={"n": n})


def handled_by(cluster, plural, names, replica, timeout=60):
    for n in names:
        obj = wait_for(lambda n=n: get(cluster, plural, n).get("status", {}).get("create_fn"),
                       timeout=timeout, what=f"{n} handled")
        assert obj == {"by": replica}, (n, obj)


def assert_no_object_handled_twice(*replicas):
    seen = {}
    for r in replicas:
        for obj in r.handled():
            assert obj not in seen, f"{obj} handled by {seen[obj]} and {r.name}"
            seen[obj] = r.name


def lease_spec(cluster, name) -> dict:
    return json.loads(kubectl(cluster, "get", "leases.coordination.k8s.io", name, "-n", "default",
                              "-o", "json").stdout)["spec"]


def test_only_the_leader_handles_and_a_graceful_stop_hands_over_at_once(cluster, tmp_path):
    apply_crd(cluster, GROUP, "Solo", "solos")
    a, b = two_replicas(cluster, tmp_path, "solos", "solo-lease")
    try:
        status = b.status()
        assert status == {"leading": False, "identity": "herald-b", "holder": "herald-a",
                          "lease_namespace": "default", "lease_name": "solo-lease"}, status
        assert a.status()["leading"] is True
        # The standby is Ready (its caches are listed): a rolling update of a
        # two-replica Deployment goes on.
        wait_for(lambda: b.ready() == 200, timeout=30, what="the standby is ready")
        assert a.ready() == 200
        # Probes run on the standby too (/healthz is its liveness); its
        # startup handler waits until it leads.
        assert b.get("/healthz") == (200, {"probe_fn": {"alive": "b"}})
        assert a.activities("startup_fn") == 1
        assert b.activities("startup_fn") == 0
        assert (a.master_status("solo-lease"), b.master_status("solo-lease")) == ("1", "0")
        first = [f"s{i}" for i in range(4)]
        create(cluster, "solos", "Solo", first)
        handled_by(cluster, "solos", first, "a")
        time.sleep(2 * RETRY_PERIOD)
        assert b.delivered() == [], b.delivered()
        assert lease_spec(cluster, "solo-lease")["holderIdentity"] == "herald-a"

        # SIGTERM: a releases the lease; b takes it at its next retry, not a
        # lease duration later.
        a.sidecar.proc.send_signal(signal.SIGTERM)
        assert a.sidecar.proc.wait(timeout=60) == 0
        released = time.monotonic()
        assert a.activities("cleanup_fn") == 1  # The leader's cleanup ran.
        assert any("released lease default/solo-lease" in line for line in a.sidecar.lines)
        wait_for(b.leading, timeout=LEASE_DURATION + SLACK, what="b leads")
        took = time.monotonic() - released
        print(f"takeover after a release: {took:.2f}s")
        assert took <= RETRY_PERIOD + SLACK, took
        assert lease_spec(cluster, "solo-lease")["holderIdentity"] == "herald-b"
        # b starts from the annotations: the objects a handled are not
        # handled again; a new one is handled by b.
        b.handler.wait_record(event="answered", handler="startup_fn")
        assert b.master_status("solo-lease") == "1"
        create(cluster, "solos", "Solo", ["s9"])
        handled_by(cluster, "solos", ["s9"], "b")
        time.sleep(2 * RETRY_PERIOD)
        assert b.delivered() == ["default/s9"], b.delivered()
        assert_no_object_handled_twice(a, b)
        assert b.activities("startup_fn") == 1
        assert b.activities("cleanup_fn") == 0
        # b leads now: its graceful stop runs its cleanup handler.
        b.sidecar.proc.send_signal(signal.SIGTERM)
        b.handler.wait_record(event="answered", handler="cleanup_fn")
        assert b.sidecar.proc.wait(timeout=60) == 0
    finally:
        a.kill()
        b.handler.kill()
        assert b.sidecar.stop() == 0


def test_a_killed_leader_is_replaced_within_the_lease(cluster, tmp_path):
    apply_crd(cluster, GROUP, "Kill", "kills")
    a, b = two_replicas(cluster, tmp_path, "kills", "kill-lease")
    try:
        create(cluster, "kills", "Kill", ["k1", "k2"])
        handled_by(cluster, "kills", ["k1", "k2"], "a")
        killed = time.monotonic()
        a.sidecar.proc.kill()
        a.sidecar.proc.wait()
        wait_for(b.leading, timeout=LEASE_DURATION + 2 * RETRY_PERIOD + 2 * SLACK, what="b leads")
        took = time.monotonic() - killed
        print(f"takeover after SIGKILL: {took:.2f}s")
        # Not before the lease expired (b saw it change at most a retry
        # period before the kill), and within lease + 2 retry periods.
        assert took >= LEASE_DURATION - RETRY_PERIOD - 0.5, took
        assert took <= LEASE_DURATION + 2 * RETRY_PERIOD + SLACK, took
        create(cluster, "kills", "Kill", ["k3"])
        handled_by(cluster, "kills", ["k3"], "b")
        time.sleep(2 * RETRY_PERIOD)
        assert b.delivered() == ["default/k3"], b.delivered()
        assert_no_object_handled_twice(a, b)
    finally:
        a.kill()
        b.handler.kill()
        assert b.sidecar.stop() == 0


def test_a_leader_stopped_past_its_renew_deadline_writes_nothing_after_waking(cluster, tmp_path):
    apply_crd(cluster, GROUP, "Nap", "naps")
    a, b = two_replicas(cluster, tmp_path, "naps", "nap-lease")
    try:
        create(cluster, "naps", "Nap", ["n1", "n2"])
        handled_by(cluster, "naps", ["n1", "n2"], "a")
        a.sidecar.proc.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        wait_for(b.leading, timeout=LEASE_DURATION + 2 * RETRY_PERIOD + 2 * SLACK, what="b leads")
        print(f"takeover after SIGSTOP: {time.monotonic() - stopped:.2f}s")
        # Objects a's watch receives while it sleeps, and finds when it wakes.
        later = ["n3", "n4", "n5"]
        create(cluster, "naps", "Nap", later)
        handled_by(cluster, "naps", later, "b")
        # One object left unhandled when a wakes: b's handler process is
        # stopped too, so b's delivery of n6 waits for an answer.
        b.handler.proc.send_signal(signal.SIGSTOP)
        create(cluster, "naps", "Nap", ["n6"])
        time.sleep(2 * RETRY_PERIOD)  # b settles: its own writes are done.
        names = ["n1", "n2"] + later + ["n6"]
        before = {n: get(cluster, "naps", n)["metadata"]["resourceVersion"] for n in names}
        a_deliveries = len(a.delivered())
        mark = a.sidecar.mark()
        a.sidecar.proc.send_signal(signal.SIGCONT)
        # It finds its renew deadline passed, stops, and exits non-zero.
        assert a.sidecar.proc.wait(timeout=60) == 1
        log = a.sidecar.lines[mark:]
        assert any("lost the lease default/nap-lease" in line for line in log), "\n".join(log)
        assert any("lost the leader lease; exiting" in line for line in log), "\n".join(log)
        time.sleep(2 * RETRY_PERIOD)
        assert a.activities("cleanup_fn") == 0  # Not the leader's any more.
        # Nothing written after waking: every object is as b left it, n6
        # included, and a's handler process got no delivery.
        after = {n: get(cluster, "naps", n)["metadata"]["resourceVersion"] for n in names}
        assert after == before, (before, after)
        assert "create_fn" not in get(cluster, "naps", "n6").get("status", {})
        assert len(a.delivered()) == a_deliveries, a.handler.lines[-10:]
        # b goes on once its process does.
        b.handler.proc.send_signal(signal.SIGCONT)
        handled_by(cluster, "naps", ["n6"], "b")
        for n in later:
            assert get(cluster, "naps", n)["status"]["create_fn"] == {"by": "b"}
        assert sorted(a.handled()) == ["default/n1", "default/n2"]
        assert_no_object_handled_twice(a, b)
        assert lease_spec(cluster, "nap-lease")["holderIdentity"] == "herald-b"
        assert b.leading()
    finally:
        for p in (a.sidecar, b.handler):
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGCONT)
        a.kill()
        b.handler.kill()
        assert b.sidecar.stop() == 0
