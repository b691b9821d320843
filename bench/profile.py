"""Where an explain request's time goes, stage by stage, in-process: `python -m bench.profile [--size N]`.

The stages are the functions the server calls for the overhead benchmark's request (one JPEG, gradient,
float16 array + overlay PNG), timed one at a time, plus the HTTP round trip of a trivial route on a real
server. Wall time and CPU time of this thread are both shown: under load from other processes wall time
grows, CPU time much less.
"""

from __future__ import annotations

import argparse
import base64
import io
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

from service import inference
from service.codecs import saliency as saliency_codec
from service.explainers import default_registry
from service.explainers.postprocess import normalize, reduce_channels
from service.rendering import prediction, predictions, render
from service.runner import run_explain
from service.schemas import ExplainRequest, ExplainResponse, ExplainResult, ExplainSpec

from .common import fwd_bwd, jpeg_bytes, load_model, median, sample_image, server, write_config
from .overhead import explain_body


def clock(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and thread-CPU milliseconds."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.thread_time()
        fn()
        cpu.append(time.thread_time() - c)
        wall.append(time.perf_counter() - w)
    return median(wall) * 1000, median(cpu) * 1000


def png_rle(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buf, format="PNG", compress_level=1, compress_type=zlib.Z_RLE)
    return buf.getvalue()


def stages(size: int, repeats: int, folder: Path) -> tuple[list[tuple[str, float, float]], str]:
    config = write_config(folder, "resnet18", size)
    loaded, settings = load_model(config, "cpu")
    body = explain_body(size)
    request = ExplainRequest.model_validate_json(body)
    spec = ExplainSpec.model_validate(request.model_dump(exclude={"images"}))
    explainer, params = default_registry().parse(spec.method)
    batch = inference.decode(list(request.images), loaded, settings)
    targets = torch.full((1,), -1, dtype=torch.long)
    result = run_explain(loaded, explainer, params, batch.x, targets, spec.objective, settings)

    def encode() -> list[ExplainResult]:
        """What the server does with an explanation: the maps and PNGs (render), then the predictions."""
        maps = render(list(batch.images), batch.geometry, [result], [explainer], spec.output)[0]  # image 0
        probs = result.logits.float().softmax(dim=1)
        target = prediction(result.logits[0], probs[0], int(result.targets[0]), loaded.labels)
        return [
            ExplainResult(
                predictions=predictions(result.logits, spec.top_k, loaded.labels)[0], target=target, **maps[0]
            )
        ]

    encoded = encode()
    response = ExplainResponse(model="bench", method={}, objective="logit", results=encoded, timing_ms={})
    map2d = normalize(reduce_channels(result.attributions, "max_abs"), "minmax")[0]
    display = saliency_codec.to_original_size(map2d, batch.geometry[0]).numpy()
    overlay = saliency_codec.overlay_png(batch.images[0], display, "jet", 0.5, False)
    rgb = np.asarray(Image.open(io.BytesIO(overlay)).convert("RGB"))  # the overlay's pixels, to time the PNG alone
    picture = batch.images[0]

    def engine() -> object:
        return run_explain(loaded, explainer, params, batch.x, targets, "logit", settings)

    out = [
        ("request JSON parse + spec", lambda: ExplainSpec.model_validate(ExplainRequest.model_validate_json(body))),
        ("base64 + JPEG decode + resize/normalise", lambda: inference.decode(list(request.images), loaded, settings)),
        ("raw fwd+bwd (torch)", lambda: fwd_bwd(loaded.module, batch.x)),
        ("engine: run_explain(gradient)", engine),
        ("encode total (array + overlay)", encode),
        ("  reduce + normalise", lambda: normalize(reduce_channels(result.attributions, "max_abs"), "minmax")),
        ("  to_original_size", lambda: saliency_codec.to_original_size(map2d, batch.geometry[0])),
        ("  float16 array + base64", lambda: saliency_codec.encode_array(map2d.numpy(), "float16", False)),
        ("  overlay: colormap + blend + PNG", lambda: saliency_codec.overlay_png(picture, display, "jet", 0.5, False)),
        ("    of which PNG encode (level 1)", lambda: saliency_codec.png_bytes(rgb)),
        ("    of which base64 of the PNG", lambda: base64.b64encode(overlay)),
        ("    (alternative: PNG with zlib.Z_RLE strategy)", lambda: png_rle(rgb)),
        ("response validate + JSON (FastAPI path)", lambda: ExplainResponse.model_validate(response).model_dump_json()),
    ]  # fmt: skip
    rows = [(name, *clock(fn, repeats)) for name, fn in out]
    with server(config, "cpu") as served, httpx.Client(base_url=served.url) as client:
        rows.append(("HTTP round trip, GET /healthz (keep-alive)", *clock(lambda: client.get("/healthz"), repeats)))
        rows.append(("HTTP round trip, GET /readyz (keep-alive)", *clock(lambda: client.get("/readyz"), repeats)))
    facts = (
        f"request body {len(body) / 1000:.0f} kB (JPEG {len(jpeg_bytes(sample_image(size))) / 1000:.0f} kB), "
        f"response body {len(response.model_dump_json()) / 1000:.0f} kB; overlay PNG {len(overlay) / 1000:.0f} kB "
        f"(with Z_RLE {len(png_rle(rgb)) / 1000:.0f} kB)"
    )
    return rows, facts


def main(argv: list[str] | None = None) -> list[tuple[str, float, float]]:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        rows, facts = stages(args.size, args.repeats, Path(folder))
    print(f"explain request stages, resnet18 {args.size}px, median of {args.repeats}")
    print("| stage | wall ms | CPU ms (this thread) |\n|---|---|---|")
    for name, wall, cpu in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")
    print(f"\n{facts}")
    return rows


if __name__ == "__main__":
    main()
