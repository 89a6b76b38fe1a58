"""P5: cold start. The sidecar starts with --resource=widgets against a source
holding N objects of about 2.5 KB and lists them in pages of 500; the time
from starting the process to its 'listed N object(s)' log line, and its peak
RSS (VmHWM) against its steady RSS afterwards. Baseline: a bare Go client
paging through the same list (bytes only, no parsing)."""

from __future__ import annotations

import json
import subprocess
import time

from common import RESOURCE, Context, Processes, Sidecar, Synthetic, mb, proc_status, row

SIZE = 2500
TIME_TARGET = 1.5  # times the bare pager's
PEAK_TARGET = 1.3  # peak RSS over steady RSS


def bare_list(ctx: Context, url: str) -> dict:
    """A bare Go client paging through the same list (500 per page), reading
    bytes and the continue token only."""
    res = subprocess.run([str(ctx.bin / "herald-synthetic"), "list", f"--server={url}",
                          "--limit=500"], capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError(res.stderr)
    return json.loads(res.stdout)


def run(ctx: Context) -> list[dict]:
    n = 5000 if ctx.quick else 100000
    with Processes() as procs:
        syn = Synthetic(ctx, procs, "p5-synthetic")
        syn.create(n, SIZE)
        json_bytes = syn.stats()["json_bytes"]
        baseline = bare_list(ctx, syn.url)["seconds"]
        pages0 = syn.stats()["list_pages"]
        side = Sidecar(ctx, procs, syn.kubeconfig, f"--resource={RESOURCE}", name="p5-sidecar")
        t0 = side.t_start
        t_listed = side.wait_listed(timeout=300)
        m = side.proc.wait_for(r"listed (\d+) object\(s\)")[1]
        listed = int(m.group(1))
        seconds = t_listed - t0
        time.sleep(2)
        st = proc_status(side.pid)
        steady, peak = st["VmRSS"], st["VmHWM"]
        pages = syn.stats()["list_pages"] - pages0
    ctx.log(f"P5: {listed} objects listed in {seconds:.2f} s; peak {mb(peak):.0f} MB, "
            f"steady {mb(steady):.0f} MB")
    common_notes = (f"{listed} objects of {json_bytes / n:.0f} B ({mb(json_bytes):.0f} MB of JSON), "
                    f"{pages} list page(s) served to the sidecar (it asks for 500 per page).")
    ratio = peak / steady
    time_ratio = seconds / baseline
    return [
        row("P5", f"cold start to listing complete, {n // 1000}k objects", round(seconds, 2),
            round(baseline, 2), "bare Go HTTP client paging the same list", "s",
            f"<= {TIME_TARGET}x the bare pager", time_ratio <= TIME_TARGET and listed == n,
            ratio=time_ratio, ratio_text=f"{time_ratio:.2f}x the bare pager",
            notes=("From starting the sidecar process to its 'listed N object(s)' log line "
                   "(discovery, every page read, parsed, cached and handed to the engine). "
                   + common_notes + f" The sidecar took in {mb(json_bytes) / seconds:.0f} MB/s "
                   f"of JSON; the bare client, which parses nothing, "
                   f"{mb(json_bytes) / baseline:.0f} MB/s.")),
        row("P5", f"peak RSS / steady RSS, {n // 1000}k objects", round(mb(peak), 1),
            round(mb(steady), 1), "steady VmRSS 2 s after listing", "MB", f"<= {PEAK_TARGET}x",
            ratio <= PEAK_TARGET, ratio=ratio, ratio_text=f"{ratio:.2f}x steady",
            notes="VmHWM (peak resident) against VmRSS once listed. " + common_notes),
    ]
