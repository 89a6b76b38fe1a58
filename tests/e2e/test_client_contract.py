"""The Python client's side of the handler contract, through the real sidecar
and `herald run`: every delivery answered, client-side filters, and
registrations the sidecar rejects."""

import json
import sys
import time
from pathlib import Path

import pytest
from heraldproc import Proc, kubectl

from .test_examples import Setup, crd, ex  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("binaries")
VENV_BIN = Path(sys.executable).parent


def run_file(ex, tmp_path, source, *args, wait=r"registered \d+ handler"):
    """`herald run` serving `source` for the example's sidecar."""
    path = tmp_path / f"handlers-{time.monotonic_ns()}.py"
    path.write_text(source)
    p = Proc([str(VENV_BIN / "herald"), "run", str(path), "--target", f"unix:{ex.sock}",
              "--stop-wait", "5", *args], env=dict(ex.cluster.env(), PYTHONUNBUFFERED="1"))
    ex.client = p
    if wait:
        p.wait_for(wait, timeout=60)
    return p


NAMED = '''
import herald

@herald.on.create('kopfexamples')
def create_fn(name, **_):
    return {'handled': name}
'''


def test_a_delivery_too_deep_to_decode_is_answered_and_frees_its_credit(ex, tmp_path):
    # The API server takes objects nested far deeper than Python's json
    # module decodes (its recursion limit, about 1,000 levels).
    p = run_file(ex, tmp_path, NAMED, "--credits", "1")
    depth = 1000
    deep = {"apiVersion": "kopf.dev/v1", "kind": "KopfExample",
            "metadata": {"name": "deep", "namespace": ex.ns}, "spec": "SPEC"}
    text = json.dumps(deep).replace('"SPEC"', '{"a":' * depth + "1" + "}" * depth)
    kubectl(ex.cluster, "create", "-f", "-", input=text)
    p.wait_for(r"\[%s/deep\] handler create_fn not called: the delivery cannot be decoded: "
               r"RecursionError" % ex.ns)
    # The sidecar took the outcome: the failure is in the object's progress...
    # (Read with a JSONPath: the test's own json module cannot decode it whole.)
    progress = ex.wait(lambda: json.loads(kubectl(
        ex.cluster, "get", "kopfexample", "deep", "-n", ex.ns, "-o",
        r"jsonpath={.metadata.annotations.herald\.dev/create_fn}").stdout or "null"),
        what="progress of deep")
    assert progress["message"].startswith("the delivery cannot be decoded: RecursionError")
    assert progress["success"] is False
    # ... and the process's only credit came back: the next object is handled.
    ex.apply(name="plain")
    assert ex.status("create_fn", name="plain") == {"handled": "plain"}


CALLABLE_FILTERS = '''
import herald

def tier_wanted(value, spec, **_):
    return value is not None and value == spec.get('tier')

@herald.on.create('kopfexamples', labels={'tier': tier_wanted},
                  annotations={'owner': lambda value, **_: value != 'nobody'})
def create_fn(name, labels, **_):
    return {'tier': labels['tier']}
'''


def test_callable_label_and_annotation_filters(ex, tmp_path):
    run_file(ex, tmp_path, CALLABLE_FILTERS)
    ex.apply(name="gold", labels={"tier": "gold"}, spec={"tier": "gold"})
    ex.apply(name="mismatch", labels={"tier": "gold"}, spec={"tier": "silver"})
    ex.apply(name="unlabelled", spec={"tier": "gold"})
    ex.apply(name="nobodys", labels={"tier": "gold"}, annotations={"owner": "nobody"},
             spec={"tier": "gold"})
    assert ex.status("create_fn", name="gold") == {"tier": "gold"}
    for name in ("mismatch", "unlabelled", "nobodys"):
        # Skipped: the cause is done without the handler's result.
        ex.wait(lambda: "herald.dev/last-handled-configuration" in ex.herald_annotations(name),
                what=f"{name} handled")
        assert "create_fn" not in ex.get(name).get("status", {}), name
    assert {key for key, _ in ex.successes()} == {f"{ex.ns}/gold"}


WITH_INVALID = '''
import herald

@herald.on.create('kopfexamples')
def create_fn(name, **_):
    return {'handled': name}

@herald.on.field('kopfexamples', field='')
def no_field(**_):
    pass
'''


def test_a_rejected_handler_stops_herald_run_unless_allowed(ex, tmp_path):
    p = run_file(ex, tmp_path, WITH_INVALID, wait=None)
    assert p.proc.wait(timeout=60) != 0
    out = "\n".join(p.lines)
    assert "handler 'no_field' was rejected: a field handler needs a field" in out, out
    assert "herald: the Herald sidecar rejected 1 handler(s): 'no_field': " \
           "a field handler needs a field" in out, out
    # With --allow-rejected the rest is served, the rejection logged.
    p = run_file(ex, tmp_path, WITH_INVALID, "--allow-rejected")
    p.wait_for(r"ERROR \[herald\] handler 'no_field' was rejected: a field handler needs a field")
    ex.apply(name="served")
    assert ex.status("create_fn", name="served") == {"handled": "served"}
    assert p.proc.poll() is None
