"""The container image itself (minutes): docker/smoke.sh builds it, runs two replicas behind nginx, kills one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SMOKE = Path(__file__).resolve().parents[2] / "docker" / "smoke.sh"


@pytest.mark.container
@pytest.mark.skipif(
    os.environ.get("SALIENCY_CONTAINER_TESTS") != "1",
    reason="set SALIENCY_CONTAINER_TESTS=1 to build the image and run docker/smoke.sh (minutes; podman or docker)",
)
def test_smoke_script_builds_the_image_and_survives_a_replica_killed() -> None:
    result = subprocess.run(["bash", str(SMOKE)], capture_output=True, text=True, timeout=1800)
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "smoke: OK" in result.stdout
