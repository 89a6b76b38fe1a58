"""Shared fixtures for Herald's integration and end-to-end tests.

Every test here drives real binaries against the real local control plane
(tests/cluster/localcluster.py). scripts/setup builds what they need.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "cluster"))
sys.path.insert(0, str(ROOT / "tests"))

from localcluster import LocalCluster, herald_bin  # noqa: E402

# The tools scripts/setup pinned (kubectl, grpcurl) come before the machine's.
os.environ["PATH"] = f"{herald_bin()}{os.pathsep}{os.environ.get('PATH', '')}"


def pytest_configure(config):
    config.addinivalue_line("markers", "sidecar_args(*args): extra flags for the example's sidecar")


@pytest.fixture(scope="session")
def cluster():
    """One control plane for the whole test session."""
    with LocalCluster() as c:
        yield c


@pytest.fixture(scope="session")
def images():
    """(sidecar image, Python image) in root's podman store, built by
    scripts/images unless up to date (scripts/test builds them while the unit
    tests run)."""
    res = subprocess.run([str(ROOT / "scripts" / "images")], capture_output=True, text=True,
                         timeout=3000)
    assert res.returncode == 0, res.stderr[-4000:]
    names = subprocess.run([str(ROOT / "scripts" / "images"), "--print"], capture_output=True,
                           text=True, check=True).stdout.split()
    return names[0], names[1]


@pytest.fixture(scope="session")
def binaries():
    """The sidecar and the test driver, built with Bazel."""
    from heraldproc import build
    build("//server:herald", "//tests/integration:kube_tool")
