"""A Kopf-style operator (tests/e2e/kopf_operator), run on Herald with only
`import herald as kopf`, against the real control plane: every handler runs
exactly once, with the statuses Kopf would write, and no finalizer is left
after deletion."""

import json

import pytest

from e2e.test_examples import Setup, crd  # noqa: F401 - the CRD fixture
from heraldproc import ROOT, kubectl

pytestmark = pytest.mark.usefixtures("binaries")
OPERATOR = ROOT / "tests" / "e2e" / "kopf_operator"


@pytest.fixture
def ex(crd, tmp_path):  # noqa: F811 - crd is the imported fixture
    s = Setup(crd, tmp_path, "kopf-operator")
    yield s
    s.close()


def test_a_kopf_operator_runs_unchanged(ex):
    c = ex.run("kopf-operator", path=OPERATOR)
    c.wait_for(r"\[configure\] configured")
    ex.apply(spec={"size": 1}, labels={"app": "demo"})
    obj = ex.get()
    uid = obj["metadata"]["uid"]
    ensured = ex.status("ensure")
    # kopf.adopt took the owner from the handler's context, as Kopf does.
    assert ensured == {"reason": "create", "child": {
        "ownerReferences": [{"controller": True, "blockOwnerDeletion": True,
                             "apiVersion": "kopf.dev/v1", "kind": "KopfExample",
                             "name": "kopf-example-1", "uid": uid}],
        "generateName": "kopf-example-1-", "namespace": ex.ns, "labels": {"app": "demo"}}}
    def messages():
        out = kubectl(ex.cluster, "get", "events", "-n", ex.ns, "-o", "json").stdout
        return {(e["reason"], e["message"]) for e in json.loads(out)["items"]}

    ex.wait(lambda: ("Ensured", "child ensured for create") in messages(),
            what="the Event kopf.event posted")
    # settings.posting.level (WARNING) keeps the logger's INFO lines off Events.
    assert not [m for _, m in messages() if m.startswith("ensured ")]
    # Retried after settings.execution.default_backoff (1 s), not 60 s.
    assert ex.status("flaky", timeout=30) == {"retries": 1}
    assert any("not ready yet" in line for line in c.lines)

    ex.patch("kopf-example-1", {"spec": {"size": 3}})
    assert ex.status("grow/spec.size") == {"from": 1, "to": 3, "ops": ["change"]}
    # Paused: the combinator says no; then a field change with a callable value.
    ex.patch("kopf-example-1", {"spec": {"size": 5, "paused": True}})
    ex.patch("kopf-example-1", {"spec": {"mode": "slow"}})
    ex.patch("kopf-example-1", {"spec": {"mode": "fast"}})
    assert ex.status("fast/spec.mode") == "now fast"
    assert ex.get()["status"]["grow/spec.size"]["to"] == 3

    # The sidecar restarts: the object is resumed by the stacked decorator,
    # whose result goes where Kopf puts it (status.ensure).
    ex.restart_sidecar()
    c.wait_for(r"handler ensure/resume succeeded", timeout=60)
    assert ex.status("ensure")["reason"] == "resume"

    kubectl(ex.cluster, "delete", "kopfexample", "kopf-example-1", "-n", ex.ns,
            "--wait=true", "--timeout=60s")
    c.wait_for(r"deleted kopf-example-1")
    key = f"{ex.ns}/kopf-example-1"
    # Startup once per start of the sidecar (the operator), as Kopf's per run.
    assert ex.successes() == {("configure", "configure"): 2,
                              (key, "ensure"): 1, (key, "ensure/resume"): 1,
                              (key, "flaky"): 1, (key, "grow/spec.size"): 1,
                              (key, "fast/spec.mode"): 1, (key, "cleanup_children"): 1}
    gone = kubectl(ex.cluster, "get", "kopfexample", "-n", ex.ns, "-o", "name", check=False)
    assert gone.stdout.strip() == ""
