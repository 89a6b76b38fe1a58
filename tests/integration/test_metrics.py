"""/metrics on the health port: what the sidecar counts while a handler process
answers reconciles that kubectl caused, checked with promtool and scraped by
a real Prometheus (both built by scripts/setup from tests/tools/prometheus)."""

import ctypes
import json
import re
import signal
import subprocess
import urllib.parse
import urllib.request

import pytest

from heraldproc import HandlerProcess, apply_crd, apply_object, handler_specs, sidecar, wait_for
from localcluster import free_port, herald_bin

pytestmark = pytest.mark.usefixtures("binaries")
GROUP = "metrics.herald.dev"
RESOURCE = f"gauges.v1.{GROUP}"
N = 5  # Objects created, each a reconcile answered twice (requeue_after, success).
CREDITS = 3

# One sample line of the text format: name, labels, value.
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict:
    """{(name, ((label, value), ...)): float} of every sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = tuple(sorted(LABEL_RE.findall(m[2] or "")))
        out[(m[1], labels)] = float(m[3])
    return out


def value(samples: dict, metric: str, /, **labels) -> float | None:
    return samples.get((metric, tuple(sorted(labels.items()))))


def scrape(port: int) -> tuple[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        assert r.status == 200
        return r.headers["Content-Type"], r.read().decode()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


def test_metrics_count_the_reconciles_kubectl_caused(cluster, tmp_path):
    apply_crd(cluster, GROUP, "Gauge", "gauges")
    sock = tmp_path / "herald.sock"
    h = sidecar(cluster, sock, "--health_listen=127.0.0.1:0")
    p = HandlerProcess(sock, {
        "credits": CREDITS,
        "handlers": handler_specs(f"gauges.{GROUP}", {"id": "create_fn", "cause": "CAUSE_CREATE"}),
        # Per object: a temporary error with a delay, then a success.
        "steps": {"create_fn": [{"status": "TEMPORARY_ERROR", "delay": 0.1},
                                {"status": "SUCCESS", "result": {"ok": True}}]},
    }, tmp_path)
    prom = None
    try:
        port = int(h.wait_for(r"/healthz and /readyz on .* \(port (\d+)\)").group(1))
        p.wait_record(event="registered")
        for i in range(N):
            apply_object(cluster, GROUP, "Gauge", f"g{i}", spec={"i": i})
        for i in range(N):
            p.wait_record(event="answered", handler="create_fn", object=f"default/g{i}",
                          status="SUCCESS", timeout=60)
        deliveries = p.records("delivery")
        assert len(deliveries) == 2 * N, deliveries

        # The counters say what the test caused. The last answer reaches the
        # engine a moment after the process logs it: wait for the count.
        def settled():
            _, text = scrape(port)
            s = parse(text)
            done = value(s, "controller_runtime_reconcile_total", controller=RESOURCE,
                         result="success")
            return (s, text) if done == N else None
        samples, text = wait_for(settled, what=f"{N} successful reconciles in /metrics",
                                 describe=lambda: scrape(port)[1])
        content_type, _ = scrape(port)
        assert content_type == "text/plain; version=0.0.4; charset=utf-8"

        def v(metric, /, **labels):
            return value(samples, metric, **labels)
        assert v("controller_runtime_reconcile_total", controller=RESOURCE,
                 result="requeue_after") == N
        assert v("controller_runtime_reconcile_total", controller=RESOURCE, result="requeue") == 0
        assert v("controller_runtime_reconcile_total", controller=RESOURCE, result="error") == 0
        assert v("controller_runtime_reconcile_errors_total", controller=RESOURCE) == 0
        assert v("controller_runtime_reconcile_time_seconds_count", controller=RESOURCE) == 2 * N
        assert v("controller_runtime_reconcile_time_seconds_bucket", controller=RESOURCE,
                 le="+Inf") == 2 * N
        assert v("herald_deliveries_total", resource=RESOURCE, handler="create_fn",
                 cause="create") == 2 * N
        assert v("herald_handler_duration_seconds_count", handler="create_fn") == 2 * N
        assert v("workqueue_adds_total", name=RESOURCE) == 2 * N
        assert v("workqueue_queue_duration_seconds_count", name=RESOURCE) == 2 * N
        assert v("workqueue_depth", name=RESOURCE) == 0
        assert v("herald_cache_objects", resource=RESOURCE) == N
        assert v("herald_handler_streams") == 1
        assert v("herald_credits_available") == CREDITS
        # The sidecar wrote each object's progress with PATCH requests.
        patches = sum(val for (name, labels), val in samples.items()
                      if name == "rest_client_requests_total"
                      and ("method", "PATCH") in labels and ("code", "200") in labels)
        assert patches >= N
        assert not any(name == "leader_election_master_status" for name, _ in samples)

        # promtool: the exposition parses and passes Prometheus's lint.
        res = subprocess.run([str(herald_bin() / "promtool"), "check", "metrics"], input=text,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr

        # A real Prometheus, on loopback, scrapes the sidecar every second.
        prom_port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [{"job_name": "herald",
                                "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
        }))
        prom_log = open(tmp_path / "prometheus.log", "w")
        prom = subprocess.Popen(
            [str(herald_bin() / "prometheus"), f"--config.file={config}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=prom_log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
            cwd=tmp_path)

        def query(q: str):
            url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    body = json.loads(r.read())
            except OSError:
                return None  # Not listening yet.
            assert body["status"] == "success", body
            return body["data"]["result"]

        q = f'sum(controller_runtime_reconcile_total{{controller="{RESOURCE}"}})'
        result = wait_for(lambda: query(q), timeout=60, what="a scrape of the sidecar",
                          describe=lambda: (tmp_path / "prometheus.log").read_text()[-3000:])
        assert float(result[0]["value"][1]) == 2 * N
        ok = query(f'controller_runtime_reconcile_total{{controller="{RESOURCE}",result="success"}}')
        assert [float(r["value"][1]) for r in ok] == [N]
        up = query('up{job="herald"}')
        assert [r["value"][1] for r in up] == ["1"]
    finally:
        if prom is not None:
            prom.terminate()
            try:
                prom.wait(timeout=30)
            finally:
                if prom.poll() is None:
                    prom.kill()
                    prom.wait()
        p.kill()
        assert h.stop() == 0
