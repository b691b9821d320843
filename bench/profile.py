"""Where an explain request's time goes, stage by stage, in-process: `python -m bench.profile [--size N]`.

The stages are the functions the server calls for the overhead benchmark's request (one JPEG, gradient,
float16 array + overlay PNG), timed one at a time; the raw fwd+bwd of the user's own model (unprepared, the
benchmarks' baseline) and of the prepared module the passes run on (BatchNorm folded); then, on a real server,
the HTTP round trip of a trivial route and the whole request, split into the stages the server reports
(`timing_ms`: decode, model, encode) and what lies outside its handler (HTTP, JSON). Wall time and CPU time
of this thread are both shown: under load from other processes wall time grows, CPU time much less. The
server rows run on the server's threads, so their CPU column is the whole process's CPU time per request.
"""

from __future__ import annotations

import argparse
import base64
import io
import math
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

from .common import fwd_bwd, jpeg_bytes, load_model, median, sample_image, server, user_model, write_config
from .overhead import explain_body, post


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
    # Here, not above: `--server-only` runs this file against older checkouts, whose modules were laid out
    # otherwise (it needs only the server).
    from service.api.v1.responses import explain_response
    from service.api.v1.schemas import ExplainRequest
    from service.codecs import Batch, codec_for
    from service.codecs.arrays import encode_array
    from service.codecs.image import maps as image_maps
    from service.core.plans import explain_here
    from service.core.results import Explained, rank, ranked
    from service.explainers import default_registry
    from service.explainers.postprocess import normalize, reduce_channels

    config = write_config(folder, "resnet18", size)
    loaded, settings = load_model(config, "cpu")
    body = explain_body(size)
    request = ExplainRequest.model_validate_json(body)
    field, inputs = request.given()
    output = request.output
    explainer, params = default_registry().parse(request.method_specs()[0])
    codec = codec_for(loaded.kind)
    batch = codec.decode(codec.admit(inputs, loaded, settings, [explainer], output), loaded, settings, output)
    picture, geometry = batch.items[0]
    targets = torch.full((1,), -1, dtype=torch.long)
    result = explain_here(loaded, explainer, params, batch.x, targets, request.objective, settings)

    def encode() -> Explained:
        """What the server does with an explanation: the maps and PNGs (the codec's render), the predictions."""
        maps = codec.render(Batch(batch.x, list(batch.items)), [result], [explainer], output)  # render empties items
        probs = result.logits.float().softmax(dim=1)
        target = rank(result.logits[0], probs[0], int(result.targets[0]), loaded.labels)
        top = ranked(result.logits, request.top_k, loaded.labels)
        return Explained("bench", [{"name": explainer.name}], "logit", top, [target], maps, {})

    explained = encode()
    response = explain_response(explained, False)
    map2d = normalize(reduce_channels(result.attributions, "max_abs"), "minmax")[0]
    display = image_maps.to_original_size(map2d, geometry).numpy()
    overlay = image_maps.overlay_png(picture, display, "jet", 0.5, False)
    rgb = np.asarray(Image.open(io.BytesIO(overlay)).convert("RGB"))  # the overlay's pixels, to time the PNG alone

    def engine() -> object:
        return explain_here(loaded, explainer, params, batch.x, targets, "logit", settings)

    def decode() -> object:
        return codec.decode(codec.admit(inputs, loaded, settings, [explainer], output), loaded, settings, output)

    out = [
        ("request JSON parse + spec", lambda: ExplainRequest.model_validate_json(body).given()),
        ("base64 + JPEG decode + resize/normalise (codec admit + decode)", decode),
        ("raw fwd+bwd, the user's model, unprepared (torch)", lambda: fwd_bwd(user_model(loaded), batch.x)),
        ("raw fwd+bwd, the prepared module the passes run on", lambda: fwd_bwd(loaded.module, batch.x)),
        ("engine: explain_here(gradient)", engine),
        ("encode total (codec render: array + overlay; predictions)", encode),
        ("  reduce + normalise", lambda: normalize(reduce_channels(result.attributions, "max_abs"), "minmax")),
        ("  to_original_size", lambda: image_maps.to_original_size(map2d, geometry)),
        ("  float16 array + base64", lambda: encode_array(map2d.numpy(), "float16", False)),
        ("  overlay: colormap + blend + PNG", lambda: image_maps.overlay_png(picture, display, "jet", 0.5, False)),
        ("    of which PNG encode (level 1)", lambda: image_maps.png_bytes(rgb)),
        ("    of which base64 of the PNG", lambda: base64.b64encode(overlay)),
        ("    (alternative: PNG with zlib.Z_RLE strategy)", lambda: png_rle(rgb)),
        ("response build + JSON (FastAPI path)", lambda: explain_response(explained, False).model_dump_json()),
    ]  # fmt: skip
    rows = [(name, *clock(fn, repeats)) for name, fn in out]
    rows += on_server(config, body, repeats)
    facts = (
        f"request body {len(body) / 1000:.0f} kB (JPEG {len(jpeg_bytes(sample_image(size))) / 1000:.0f} kB), "
        f"response body {len(response.model_dump_json()) / 1000:.0f} kB; overlay PNG {len(overlay) / 1000:.0f} kB "
        f"(with Z_RLE {len(png_rle(rgb)) / 1000:.0f} kB); the model's preparation: {preparation(loaded)}"
    )
    return rows, facts


def preparation(loaded) -> str:
    prepared = getattr(loaded, "prepared", None)
    return "; ".join(prepared.notes) if prepared is not None and prepared.notes else "none"


def on_server(config: Path, body: bytes, repeats: int) -> list[tuple[str, float, float]]:
    """A real server (bench/common.py): trivial round trips, then the request itself."""
    with server(config, "cpu") as served, httpx.Client(base_url=served.url) as client:
        rows = [
            ("HTTP round trip, GET /healthz (keep-alive)", *clock(lambda: client.get("/healthz"), repeats)),
            ("HTTP round trip, GET /readyz (keep-alive)", *clock(lambda: client.get("/readyz"), repeats)),
        ]
        return rows + through_server(client, body, repeats)


def through_server(client: httpx.Client, body: bytes, repeats: int) -> list[tuple[str, float, float]]:
    """The request itself on the server: end to end, and the stages of its `timing_ms`; median ms of each.
    CPU: the whole process's (server threads and this client) per request."""
    for _ in range(3):
        post(client, body)
    e2e, cpu, parts = [], [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        timing = post(client, body).json()["timing_ms"]
        cpu.append(time.process_time() - c)
        e2e.append(time.perf_counter() - w)
        parts.append(timing | {"outside": e2e[-1] * 1000 - timing["total"]})
    nan = float("nan")
    return [
        ("server: POST explain end to end (CPU: whole process)", median(e2e) * 1000, median(cpu) * 1000),
        ("  server stage: decode (base64, JPEG, resize/normalise)", median([t["decode"] for t in parts]), nan),
        ("  server stage: model (queue, engine, thread hops)", median([t["model"] for t in parts]), nan),
        ("  server stage: encode (array + overlay, predictions)", median([t["encode"] for t in parts]), nan),
        ("  outside the handler: HTTP, JSON parse and serialise", median([t["outside"] for t in parts]), nan),
    ]


def main(argv: list[str] | None = None) -> list[tuple[str, float, float]]:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--server-only",
        action="store_true",
        help="only the rows measured on a real server (these run against older checkouts too: PYTHONPATH=TREE)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        if args.server_only:
            config = write_config(Path(folder), "resnet18", args.size)
            rows, facts = on_server(config, explain_body(args.size), args.repeats), ""
        else:
            rows, facts = stages(args.size, args.repeats, Path(folder))
    print(f"explain request stages, resnet18 {args.size}px, median of {args.repeats}")
    print("| stage | wall ms | CPU ms (this thread) |\n|---|---|---|")
    for name, wall, cpu in rows:
        print(f"| {name} | {wall:.2f} | {'-' if math.isnan(cpu) else f'{cpu:.2f}'} |")
    print(f"\n{facts}")
    return rows


if __name__ == "__main__":
    main()
