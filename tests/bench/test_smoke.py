"""Smoke test of the benchmark harness: the quick run of the scenarios that
need no peers (P2 to P7, small sizes, against the synthetic watch source)
produces a row per case with real, finite numbers, and leaves no process
behind. It checks the harness works, not that the performance targets are
met: timings on a shared test machine say little."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SCENARIOS = ["P2", "P3", "P4", "P5", "P6", "P7"]


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _leftovers(workdir: Path) -> list[str]:
    """Processes still running with the workdir on their command line."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(workdir) in cmd:
            out.append(f"{pid}: {cmd}")
    return out


def test_quick_run_produces_rows(tmp_path):
    workdir = tmp_path / "bench"
    results = tmp_path / "results.json"
    res = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "bench" / "run.py"), "--quick", "--no-setup",
         "--fastbuild", "--only", ",".join(SCENARIOS), f"--workdir={workdir}",
         f"--results={results}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    data = json.loads(results.read_text())
    rows = data["rows"]
    seen = {r["scenario"] for r in rows}
    assert seen == set(SCENARIOS), (seen, res.stderr[-4000:])
    for r in rows:
        where = f"{r['scenario']} {r['case']}: {r.get('notes')}"
        assert _finite(r["herald"]), where
        assert _finite(r["baseline"]), where
        assert r["baseline_name"] and r["target"] and r["unit"], where
        assert r["met"] in (True, False), where
    # The quick run writes its report to the workdir, never over docs/.
    report = (workdir / "benchmarks.md").read_text()
    for sc in SCENARIOS:
        assert f"| {sc} |" in report
    assert not _leftovers(workdir), _leftovers(workdir)


def test_synthetic_source_go_tests():
    """The synthetic source's own tests: list paging, merge and JSON patches
    echoed to a watch, the 410 relist control."""
    go = next((p for p in ("/usr/local/go/bin/go", "/usr/bin/go") if os.path.exists(p)), "go")
    res = subprocess.run([go, "test", "./..."], cwd=ROOT / "tests" / "bench" / "synthetic",
                         env=dict(os.environ, GOFLAGS="-buildvcs=false"), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
