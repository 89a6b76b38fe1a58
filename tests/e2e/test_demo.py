"""The README's main command, as a new user runs it (without waiting for
Ctrl+C), on the tests' build: the release build is the images' and the
benchmarks' (tests/e2e/test_images.py checks it), and building it here too
would lengthen the test command by a whole optimized build."""

import subprocess

from heraldproc import ROOT


def test_demo_shows_what_the_handler_did():
    out = subprocess.run([str(ROOT / "scripts" / "demo"), "--debug-build", "--once"], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert '"message": "hello default/kopf-example-1"' in text, text[-3000:]
    version = (ROOT / "VERSION").read_text().strip()
    assert f"herald {version} (commit unknown (unstamped build), debug build)" in text
    assert "A handler is called with body" in text
    assert "herald.dev/last-handled-configuration" in text
    assert text.rstrip().endswith("stopped: no process left behind")
