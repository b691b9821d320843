"""Fixtures of the deployment tests: the load-balancer client shared with docker/smoke.sh, and nginx."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"


@pytest.fixture(scope="session")
def smoke_client() -> ModuleType:
    """docker/smoke_client.py, which docker/smoke.sh runs too (it lives with the deployment files, not in a package)."""
    spec = importlib.util.spec_from_file_location("smoke_client", DOCKER / "smoke_client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        pytest.skip("nginx is not installed (Debian: apt-get install -y nginx; .ci/run installs it)")
    return found
