"""The client as users install it: `pip install ./client` alone, in a fresh virtual environment (no torch,
no server), then a real call to a live server from that environment."""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[2] / "client"

CALL = """
import json, sys
import saliency_client
from saliency_client import Client
from PIL import Image

url, key, image = sys.argv[1:4]
with Client(url, api_key=key) as client:
    answer = client.explain("shapes", image, method="gradient", output={"saliency": "float16"})
    result = answer.results[0]
    print(json.dumps({
        "version": saliency_client.__version__,
        "label": result.target.label,
        "dtype": str(result.explanation.saliency.dtype),
        "shape": list(result.explanation.saliency.shape),
    }))
"""


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("client-venv")
    venv.create(folder, with_pip=True)
    python = folder / "bin" / "python"
    done = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(CLIENT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 and "Could not find a version" in done.stderr:
        pytest.skip(f"no package index reachable for the client's dependencies: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    return python


def test_the_client_installs_alone_without_torch_or_the_server(client_venv, tmp_path):
    listed = subprocess.run([client_venv, "-m", "pip", "list", "--format=json"], capture_output=True, text=True)
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "saliency-service-client" in names and {"httpx", "httpx-sse", "numpy", "pillow"} <= names
    assert not names & {"torch", "torchvision", "fastapi", "saliency-service", "transformers", "scipy"}
    for module in ("torch", "service"):
        # From elsewhere than the checkout, whose service/ would be on the path as the current directory.
        probe = subprocess.run([client_venv, "-c", f"import {module}"], capture_output=True, text=True, cwd=tmp_path)
        assert probe.returncode != 0, f"{module} is importable in the client's environment"


def test_the_alone_client_calls_a_live_server(client_venv, demo_server, tmp_path):
    from service.demo import shapes

    image = tmp_path / "shape.png"
    from PIL import Image

    Image.fromarray(shapes.generate(1, seed=5).images[0]).save(image)
    done = subprocess.run(
        [client_venv, "-c", CALL, demo_server.url, demo_server.api_key, str(image)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # not the checkout: nothing of the repository on its path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["version"] == "0.1.0"
    assert out["label"] in shapes.CLASSES
    assert out["dtype"] == "float16" and out["shape"] == [shapes.IMAGE_SIZE, shapes.IMAGE_SIZE]
