"""A vision transformer end to end: each method's HTTP time on torchvision's vit_b_16 at 224 px over the
raw forward+backward of the same model in the same process (issue 20's "timings per method for the ViT").

One JPEG per request, the predicted class, a float16 map back. The raw pass is `fwd_bwd` on the server's own
model; raw and HTTP timings alternate, so a change in load hits both. The quick mode serves a 2-block ViT
at 64 px instead, only so the script cannot rot.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from .common import MODEL, Context, Report, Row, fwd_bwd, median, model_input, timed
from .overhead import explain_spec

METHODS: dict[str, dict] = {
    "gradient": {},
    "gradcam": {},
    "layercam": {},
    "eigencam": {},
    "attention_rollout": {},
    "attention_relevance": {},
    "integrated_gradients": {"steps": 16},
    "smoothgrad": {"samples": 8, "seed": 0},
}


def write_config(folder: Path, quick: bool) -> tuple[Path, int]:
    if quick:  # a factory in this module: python:bench.transformers:tiny_vit
        arch, size = 'architecture = "python:bench.transformers:tiny_vit"', 64
    else:
        arch, size = 'architecture = "torchvision:vit_b_16"', 224
    path = folder / f"vit-{size}.toml"
    path.write_text(f'[[models]]\nname = "{MODEL}"\n{arch}\nnum_classes = 1000\ninput_size = [{size}, {size}]\n')
    return path, size


def tiny_vit(num_classes: int = 1000):
    import torchvision

    return torchvision.models.VisionTransformer(64, 16, 2, 2, 32, 64, num_classes=num_classes)


def run(ctx: Context) -> Report:
    quick = ctx.plan.size < 224
    config, size = write_config(ctx.folder, quick)
    served = ctx.servers.get(config, ctx.plan.device)
    model, x = served.loaded.module, model_input(served.loaded)
    repeats = 2 if quick else 5
    report = Report()
    with httpx.Client(base_url=served.url, timeout=600) as client:
        for name, params in METHODS.items():
            body = json.dumps(explain_spec(size, {"name": name, **params})).encode()
            raw, http = [], []
            for i in range(repeats + 1):  # the first of each is a warm-up
                r = timed(lambda: fwd_bwd(model, x), ctx.plan.device)

                def call(body: bytes = body) -> None:
                    response = client.post(
                        f"/v1/models/{MODEL}/explain", content=body, headers={"content-type": "application/json"}
                    )
                    response.raise_for_status()

                h = timed(call, ctx.plan.device)
                if i:
                    raw.append(r)
                    http.append(h)
            report.rows.append(
                Row(
                    f"ViT {size} px: {name} e2e / fwd+bwd",
                    median(http) * 1000,
                    median(raw) * 1000,
                    "ms",
                    None,
                    ", ".join(f"{k}={v}" for k, v in params.items()),
                )
            )
            print(f"  vit {name}: {median(http) * 1000:.0f} ms (raw fwd+bwd {median(raw) * 1000:.0f} ms)", flush=True)
    return report
