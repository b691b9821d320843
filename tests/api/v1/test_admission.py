"""Admission over HTTP: each limit's 413 and what it says, refusals that decode nothing, and a request near
the memory limit whose measured peak stays within its estimate."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from service.api.v1.schemas import OutputOptions
from service.codecs.image import admission
from service.errors import Overloaded
from service.explainers import default_registry
from service.models import load_config
from service.settings import Settings

EXPLAIN = "/v1/models/shapes18/explain"
PREDICT = "/v1/models/shapes18/predict"
JSON = {"content-type": "application/json"}
# The request limits at their defaults (tests/api/conftest.py lowers them), so that only admission refuses.
DEFAULT_LIMITS = {
    name: Settings.model_fields[name].default
    for name in ("max_images", "max_body_bytes", "max_image_bytes", "max_image_pixels", "max_passes_per_image")
}


def flat_png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 200)).save(buf, format="PNG")
    return buf.getvalue()


def status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))


def reset_peak() -> int:
    """Resets VmHWM to the current resident size (Linux) and returns that size."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return status_bytes("VmRSS")


@pytest.fixture(scope="module")
def huge_flat_png() -> str:
    """Base64 of a flat 6000x6000 PNG: 36 M pixels in 120 kB."""
    return base64.b64encode(flat_png(6000, 6000)).decode()


@pytest.fixture
def no_decoding(monkeypatch) -> list:
    """Decoding pixels fails the request (and is recorded); reading a header does not decode."""
    loads: list = []

    def load(self):
        loads.append(self)
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return loads


def error(response) -> dict:
    assert response.status_code == 413, response.text
    return response.json()["error"]


@pytest.mark.parametrize(
    ("limits", "named"),
    [({}, "(max_output_pixels)"), ({"max_output_pixels": 10**12}, "(max_request_bytes)")],
    ids=["default limits", "memory limit"],
)
def test_sixteen_36_megapixel_pngs_are_refused_at_once_without_decoding(
    make_client, huge_flat_png, no_decoding, limits, named
):
    # The request that took 11.5 GiB and 127 s: 16 flat 6000x6000 PNGs (2 MB), original size and overlays.
    body = json.dumps(
        {"images": [huge_flat_png] * 16, "method": "gradient", "output": {"size": "original", "overlay": True}}
    )
    with make_client(**DEFAULT_LIMITS, **limits) as client:
        before = reset_peak()
        started = time.perf_counter()
        response = client.post(EXPLAIN, content=body, headers=JSON)
        seconds = time.perf_counter() - started
        growth = status_bytes("VmHWM") - before
    assert error(response)["code"] == "payload_too_large" and named in error(response)["message"]
    assert not no_decoding
    assert seconds < 1.0, seconds
    assert growth < 100 * 2**20, growth


def test_passes_are_capped_per_request_over_all_its_images(make_client, photos):
    method = {"name": "integrated_gradients", "steps": 4}  # 6 forward passes per image
    with make_client(max_passes_per_request=20) as client:
        refused = client.post(EXPLAIN, json={"images": [photos["chelsea.jpg"].b64] * 4, "method": method})
        admitted = client.post(EXPLAIN, json={"images": [photos["chelsea.jpg"].b64] * 3, "method": method})
    assert error(refused) == {
        "code": "payload_too_large",
        "message": "4 images x 6 model passes = 24 passes is over the 20 limit (max_passes_per_request) by 4; "
        "send fewer images or lower method.steps",
        "field": "method.steps",
    }
    assert admitted.status_code == 200, admitted.text


def test_output_pixels_at_the_original_size_are_capped_over_the_images(make_client, photos):
    photo = photos["chelsea.jpg"]  # 451x300
    pixels = photo.width * photo.height

    def post(client, n: int, **output):
        return client.post(EXPLAIN, json={"images": [photo.b64] * n, "method": "gradient", "output": output})

    with make_client(max_output_pixels=2 * pixels) as client:
        original = post(client, 3, size="original")
        overlays = post(client, 3, overlay=True)  # overlays are at the original size whatever `size` says
        assert post(client, 2, size="original", overlay=True).status_code == 200
        assert post(client, 3, heatmap=True).status_code == 200  # input size: not counted
    assert error(original) == {
        "code": "payload_too_large",
        "message": f"outputs at the original size are {3 * pixels:,} pixels, over the {2 * pixels:,} limit "
        f"(max_output_pixels) by {pixels:,}; ask for size=input without overlay, or send fewer or smaller images",
        "field": "output",
    }
    assert error(overlays)["message"] == error(original)["message"]


def estimate(photo_b64: str, config: Path, **output) -> int:
    """What admission estimates for one photo explained with gradient by shapes18."""
    (spec,) = [s for s in load_config(config) if s.name == "shapes18"]
    explainer, params = default_registry().parse("gradient")
    _, headers = admission.inspect([photo_b64], Settings(config=config))
    work = admission.Work.of([explainer], spec, OutputOptions(**output))
    return admission.estimate_bytes(headers, work)


def test_estimated_memory_is_capped_and_the_413_says_by_how_much(make_client, photos, ready_config):
    photo = photos["flower.png"].b64
    small, large = estimate(photo, ready_config), estimate(photo, ready_config, size="original", overlay=True)
    limit = (small + large) // 2
    with make_client(max_request_bytes=limit) as client:
        output = {"size": "original", "overlay": True}
        refused = client.post(EXPLAIN, json={"images": [photo], "method": "gradient", "output": output})
        admitted = client.post(EXPLAIN, json={"images": [photo], "method": "gradient"})
    size = admission.size
    assert error(refused) == {
        "code": "payload_too_large",
        "message": f"estimated peak memory {size(large)} is over the {size(limit)} limit (max_request_bytes) by "
        f"{size(large - limit)}; ask for size=input without overlay, or send fewer or smaller images",
        "field": "images",
    }
    assert admitted.status_code == 200, admitted.text


def test_predict_is_capped_by_its_estimate_too(make_client, photos):
    with make_client(max_request_bytes=2**20) as client:
        message = error(client.post(PREDICT, json={"images": [photos["chelsea.jpg"].b64]}))["message"]
    assert message.startswith("estimated peak memory ") and "over the 1 MiB limit (max_request_bytes)" in message
    assert message.endswith("; send fewer or smaller images")


@pytest.mark.parametrize("path", [EXPLAIN, PREDICT])
def test_a_full_queue_refuses_before_any_pixel_is_decoded(client, photos, no_decoding, monkeypatch, path):
    def full(*args, **kwargs):
        raise Overloaded("queue full", headers={"Retry-After": "1"})

    monkeypatch.setattr(client.app.state.services.runner, "reserve", full)
    method = {"method": "gradient"} if path == EXPLAIN else {}
    response = client.post(path, json={"images": [photos["chelsea.jpg"].b64], **method})
    assert response.status_code == 503 and response.json()["error"]["code"] == "overloaded"
    assert not no_decoding


# Runs in a fresh interpreter, so that nothing the test session allocated before counts.
MEASURE = """
import base64, gc, io, json, sys
from fastapi.testclient import TestClient
from PIL import Image
from service.codecs.image import admission
from service.main import create_app
from service.engine.runner import chunk_rows
from service.settings import Settings

def status_bytes(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

def flat_png(side):
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (90, 140, 200)).save(buf, format="PNG")
    return buf.getvalue()

args = json.loads(sys.argv[1])
settings = Settings(config=args["config"], device="cpu")  # the default limits
estimates = []
estimate_bytes = admission.estimate_bytes
admission.estimate_bytes = lambda headers, work: estimates.append(estimate_bytes(headers, work)) or estimates[-1]

def body(side, n):
    image = base64.b64encode(flat_png(side)).decode()
    spec = {"method": "gradient", "output": {"size": "original", "overlay": True}}
    return json.dumps({"images": [image] * n, **spec}).encode()

warm, big = body(64, 1), body(args["side"], args["images"])
url, headers = "/v1/models/shapes18/explain", {"content-type": "application/json"}
with TestClient(create_app(settings)) as client:
    assert client.post(url, content=warm, headers=headers).status_code == 200
    gc.collect()
    admission.release_freed_memory(admission.TRIM_FROM_PIXELS)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM from here: the app's start and the warm-up request do not count
    before = status_bytes("VmRSS")
    response = client.post(url, content=big, headers=headers)
    peak = status_bytes("VmHWM") - before
    loaded = client.app.state.services.pool.get("shapes18")
    engine = min(chunk_rows(loaded, settings), args["images"]) * loaded.row_bytes
print(json.dumps({"status": response.status_code, "estimate": estimates[-1], "peak": peak, "engine": engine}))
"""


def test_a_request_near_the_memory_limit_stays_within_its_estimate(ready_config):
    args = json.dumps({"config": str(ready_config), "side": 1900, "images": 4})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.run([sys.executable, "-c", MEASURE, args], capture_output=True, text=True, env=env, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    out = json.loads(child.stdout.strip().splitlines()[-1])
    limit = Settings.model_fields["max_request_bytes"].default
    assert out["status"] == 200
    assert 0.85 * limit < out["estimate"] <= limit  # near the limit, and admitted
    # The engine's activations are bounded per device by memory_budget_bytes, not per request.
    bound = out["estimate"] + out["engine"]
    mib = 2**20
    print(f"peak {out['peak'] / mib:.0f} MiB of {out['estimate'] / mib:.0f} + {out['engine'] / mib:.0f} MiB estimated")
    assert out["peak"] <= bound, f"measured {out['peak'] / mib:.0f} MiB over the {bound / mib:.0f} MiB estimate"
