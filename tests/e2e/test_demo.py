"""The README's main command, as a new user runs it (without waiting for
Ctrl+C)."""

import subprocess

from heraldproc import ROOT


def test_demo_shows_what_the_handler_did():
    out = subprocess.run([str(ROOT / "scripts" / "demo"), "--once"], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert '"message": "hello default/kopf-example-1"' in text, text[-3000:]
    assert "A handler is called with body" in text
    assert "herald.dev/last-handled-configuration" in text
    assert text.rstrip().endswith("stopped: no process left behind")
