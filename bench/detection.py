"""Detectors end to end: each method's HTTP time per image (issue 21's "time per method per image"), over the
detector's raw forward on the same input in the same process.

Two models: the demo FCOS (`service/demo/detector.py`, 128 px) on a generated scene, and torchvision's
`fasterrcnn_mobilenet_v3_large_fpn` (random weights, `min_score` 0, so that it reports `max_detections` boxes)
at 320 px on the same scene scaled up. One PNG per request, every reported detection explained, float16 maps
back; the note says how many boxes each image had, since the per-box methods scale with them. The quick mode
runs the demo model with tiny step and mask counts, only so the script cannot rot.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import httpx
import torch
from PIL import Image

from service.demo import scenes

from .common import MODEL, Context, Report, Row, median, timed

METHODS: dict[str, dict] = {
    "gradcam": {},
    "eigencam": {},
    "gradient": {},
    "integrated_gradients": {"steps": 16},
    "drise": {"masks": 1000},
}
QUICK = {"gradcam": {}, "drise": {"masks": 8}, "integrated_gradients": {"steps": 2}}
DEMO = Path(__file__).resolve().parents[1] / "service" / "demo"


def write_config(folder: Path, model: str) -> Path:
    """One model named MODEL (the servers' baseline is the model of that name)."""
    if model == "demo":
        entry = (
            'architecture = "python:service.demo.detector:shapes_detector"\n'
            f'weights = "{DEMO / "shapes-detector.pt"}"\nlabels = "{DEMO / "detector-labels.txt"}"\n'
            'num_classes = 5\ninput_size = [128, 128]\ntarget_layer = "backbone.body.stage4"\n'
        )
    else:
        entry = (
            'architecture = "torchvision:fasterrcnn_mobilenet_v3_large_fpn"\nnum_classes = 91\n'
            "input_size = [320, 320]\nmin_score = 0.0\nmax_detections = 5\n"
        )
    path = folder / f"detector-{model}.toml"
    path.write_text(f'[[models]]\nname = "{MODEL}"\nkind = "detection"\n{entry}')
    return path


def scene_png(size: int) -> bytes:
    found = scenes.generate(1, seed=96_000)
    buffer = io.BytesIO()
    Image.fromarray(found.images[0]).resize((size, size), Image.Resampling.BILINEAR).save(buffer, "PNG")
    return buffer.getvalue()


def run(ctx: Context) -> Report:
    quick = ctx.plan.size < 224
    repeats = 2 if quick else 5
    # The Faster R-CNN's D-RISE is 1,000 forwards of a 320 px detector (minutes here): fewer repeats for it.
    few = {"demo": repeats, "frcnn": 1 if not quick else repeats}
    report = Report()
    models = [("demo", 128)] if quick else [("demo", 128), ("frcnn", 320)]
    with httpx.Client(timeout=600) as client:
        for name, size in models:
            # The Faster R-CNN's IG-16 of 5 boxes is about a minute of passes here: over the default deadline.
            served = ctx.servers.get(write_config(ctx.folder, name), ctx.plan.device, request_timeout_s=900)
            client.base_url = httpx.URL(served.url)
            loaded = served.loaded
            png = scene_png(size)
            x = scenes.to_tensor(scenes.generate(1, seed=96_000).images)
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear").to(loaded.device)
            encoded = base64.b64encode(png).decode("ascii")
            found = client.post(f"/v1/models/{MODEL}/predict", json={"images": [encoded]}).json()
            boxes = len(found["results"][0]["detections"])

            def forward(module: torch.nn.Module = loaded.module, x: torch.Tensor = x) -> None:
                with torch.inference_mode():
                    module(x)

            for method, params in (QUICK if quick else METHODS).items():
                if name == "frcnn" and method == "drise":
                    params = {"masks": 500}  # 500 forwards of the 320 px detector a request: a minute here
                body = json.dumps(
                    {"images": [encoded], "method": {"name": method, **params}, "output": {"saliency": "float16"}}
                ).encode()

                def call(body: bytes = body) -> None:
                    response = client.post(
                        f"/v1/models/{MODEL}/explain", content=body, headers={"content-type": "application/json"}
                    )
                    response.raise_for_status()

                raw, http = [], []
                for i in range(few[name] + 1):  # the first of each is a warm-up
                    r, h = timed(forward, ctx.plan.device), timed(call, ctx.plan.device)
                    if i:
                        raw.append(r)
                        http.append(h)
                settings = ", ".join(f"{k}={v}" for k, v in params.items())
                note = f"{boxes} boxes{'; ' + settings if settings else ''}"
                report.rows.append(
                    Row(
                        f"{name} {size} px: {method} e2e / forward",
                        median(http) * 1000,
                        median(raw) * 1000,
                        "ms",
                        None,
                        note,
                    )  # fmt: skip
                )
                print(f"  {name} {method}: {median(http) * 1000:.0f} ms ({note})", flush=True)
    return report
