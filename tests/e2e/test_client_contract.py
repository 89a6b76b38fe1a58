"""The Python client's side of the handler contract, through the real sidecar
and `herald run`: every delivery answered, client-side filters, and
registrations the sidecar rejects."""

import json
import sys
import time
from pathlib import Path

from heraldproc import Proc, kubectl

from .test_examples import Setup, crd, ex  # noqa: F401 - fixtures

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
