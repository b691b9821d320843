"""Against TorchServe: the same resnet18 weights behind TorchServe's stock `image_classifier` handler, over HTTP.

TorchServe (bench/torchserve_server.py) runs as it ships apart from one worker (see WORKERS) and no host
metrics: `/predictions` (top 5 softmax) and `/explanations` (Captum's IntegratedGradients, n_steps=15, its
defaults: baseline 0 in input space, Gauss-Legendre, all 15 steps in one batch; the class from a JSON part
named `target`, else class 0). Ours, in its own process (bench/serve.py): predict, and `integrated_gradients`
with 15 steps, baseline "zero", the raw float32 (3, 224, 224) attribution back, for the predicted class.
Both load one state_dict file and preprocess alike (shorter side to 256, centre crop 224, ImageNet mean/std:
the model's TOML says so); both get the same lossless 320x240 PNG as the raw body (TorchServe's explanations
as a multipart part, since its target can only travel that way). One client: the time until the answer is
parsed (JSON, and the map as a float32 array). Eight clients: a closed loop, the wall time per answer read.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

import httpx
import numpy as np
import torch
import torchvision
from PIL import Image

from .common import MODEL, ROOT, Context, Report, Row, live_server, median, png_bytes, sample_image
from .torchserve_server import missing, torchserve

# TorchServe's default on a CPU is a worker per logical CPU, each a Python process with torch's intra-op threads
# on every core (4 threads on 2 cores here); one worker uses the cores as our one device thread does.
WORKERS = 1
CLIENTS = 8
IG = {"name": "integrated_gradients", "steps": 15, "baseline": "zero"}  # the stock handler's Captum call
RAW = {"saliency": "float32", "reduce": "none", "normalize": "none"}  # the attribution as TorchServe sends it
PER_CLIENT = {"predict": 5, "IG-15": 1}  # requests each client sends per 8-client round
# Untimed requests per side first: a fresh TorchServe answers its first few predictions 10-20x slower (the JVM's
# JIT, the worker's first passes).
WARM = {"predict": 10, "IG-15": 2}


def setup(folder) -> tuple:
    """One state_dict for both servers, our TOML with TorchServe's preprocessing, and the picture."""
    torch.manual_seed(0)
    weights = folder / "resnet18-torchserve.pt"
    torch.save(torchvision.models.resnet18(num_classes=1000).state_dict(), weights)
    config = folder / "resnet18-torchserve.toml"
    config.write_text(
        f'[[models]]\nname = "{MODEL}"\narchitecture = "torchvision:resnet18"\nnum_classes = 1000\n'
        f'weights = "{weights}"\ninput_size = [224, 224]\nresize = "shorter_side"\nresize_size = 256\n'
    )
    picture = sample_image(320).crop((0, 40, 320, 280))  # 4:3, so resize and crop both do something
    return weights, config, picture


def same_input(picture: Image.Image, config) -> str:
    """How far our preprocessing of the picture is from the stock handler's transform."""
    import contextlib
    import importlib
    import io

    from service.codecs.image.transforms import to_input
    from service.models.spec import load_config

    with contextlib.redirect_stdout(io.StringIO()):  # its import prints which accelerators it did not find
        handler = importlib.import_module("ts.torch_handler.image_classifier").ImageClassifier
    ours = to_input(picture, load_config(config)[0])[0]
    return f"largest difference {float((ours - handler.image_processing(picture)).abs().max()):.1e}"


def calls(ours: str, theirs: str, png: bytes, target: int) -> dict[str, dict[str, dict]]:
    """kind -> side -> httpx request arguments."""
    image = {"content": png, "headers": {"content-type": "image/png"}}
    explain = {"method": json.dumps(IG), "output": json.dumps(RAW)}
    return {
        "predict": {
            "ours": {"url": f"{ours}/v1/models/{MODEL}/predict", **image},
            "torchserve": {"url": f"{theirs}/predictions/{MODEL}", "content": png},
        },
        "IG-15": {
            "ours": {"url": f"{ours}/v1/models/{MODEL}/explain", "params": explain, **image},
            "torchserve": {
                "url": f"{theirs}/explanations/{MODEL}",
                "files": {
                    "data": ("image.png", png, "image/png"),
                    "target": ("t", str(target).encode(), "application/json"),
                },
            },
        },
    }


def parsed(kind: str, side: str, response: httpx.Response):
    """What a client needs from the answer: the predictions, or the map as a float32 array."""
    body = response.json()
    if kind == "predict":
        return body
    if side == "torchserve":
        return np.asarray(body, dtype=np.float32)
    array = body["results"][0]["saliency"]
    return np.frombuffer(base64.b64decode(array["data"]), dtype="<f4").reshape(array["shape"])


def one_client(client: httpx.Client, kind: str, sides: dict[str, dict], repeats: int) -> dict:
    """Per side: median seconds to the parsed answer and to the last byte, answer bytes, the last parse."""
    out: dict[str, dict] = {side: {"total": [], "http": []} for side in sides}
    warm = WARM[kind]
    for i in range(warm + repeats):
        for side in sides if i % 2 else list(sides)[::-1]:
            started = time.perf_counter()
            response = client.post(**sides[side])
            response.raise_for_status()
            read = time.perf_counter()
            out[side] |= {"value": parsed(kind, side, response), "bytes": response.num_bytes_downloaded}
            out[side]["response"] = response
            if i >= warm:
                out[side]["http"].append(read - started)
                out[side]["total"].append(time.perf_counter() - started)
    medians = {side: {**o, "total": median(o["total"]), "http": median(o["http"])} for side, o in out.items()}
    return medians | {"repeats": repeats}


async def closed_loop(request: dict, per_client: int) -> float:
    """CLIENTS clients, each sending its next request when its answer is read; wall seconds per answer."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:

        async def one() -> None:
            for _ in range(per_client):
                (await client.post(**request)).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(CLIENTS)))
        return (time.perf_counter() - started) / (CLIENTS * per_client)


def rows(single: dict, many: dict, rounds: int) -> list[Row]:
    """The timing and size rows: ours over TorchServe's, all for information (the issue sets no target)."""
    out = []

    def add(name: str, ours: float, theirs: float, unit: str, note: str) -> None:
        out.append(Row(f"torchserve: {name} / TorchServe", ours, theirs, unit, None, note))

    for kind, s in single.items():
        ours, theirs = s["ours"], s["torchserve"]
        note = f"to the parsed answer (to its last byte {ours['http'] * 1e3:.0f} vs {theirs['http'] * 1e3:.0f} ms)"
        add(f"{kind} 1 client", ours["total"] * 1e3, theirs["total"] * 1e3, "ms", f"{note}; median of {s['repeats']}")
        ours, theirs = (median(many[kind][side]) * 1e3 for side in ("ours", "torchserve"))
        add(
            f"{kind} {CLIENTS} clients",
            ours,
            theirs,
            "ms",
            f"per answer, {CLIENTS} x {PER_CLIENT[kind]} requests, median of {rounds} rounds",
        )
    for kind, s in single.items():
        add(
            f"{kind} response bytes", s["ours"]["bytes"] / 1e3, s["torchserve"]["bytes"] / 1e3, "kB", "the body as sent"
        )
    return out


def agreement(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, str]:
    a, b = ours.astype(np.float64).ravel(), theirs.astype(np.float64).ravel()
    corr = float(np.corrcoef(a, b)[0, 1])
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    err = float(np.abs(a - b).max() / np.abs(b).max())
    return corr, f"Pearson {corr:.6f}, cosine {cosine:.6f}, largest difference {err:.1e} of TorchServe's peak"


def same_predictions(ours: dict, theirs: dict[str, float]) -> str:
    top = {p["index"]: p["probability"] for p in ours["results"][0]["predictions"]}
    if list(top) != [int(k) for k in theirs]:
        return f"NOT the same top 5: ours {list(top)}, TorchServe's {list(theirs)}"
    return f"the same top 5, probabilities within {max(abs(top[int(k)] - v) for k, v in theirs.items()):.1e}"


def run(ctx: Context) -> Report:
    report, plan = Report(), ctx.plan
    why = missing()
    if why is not None:
        print(f"  torchserve: skipped, {why}", flush=True)
        return report
    weights, config, picture = setup(ctx.folder)
    png = png_bytes(picture)
    our_log = ctx.folder / "torchserve-ours.log"
    with live_server(ROOT, config, our_log) as ours, torchserve(ctx.folder, weights, WORKERS) as theirs:
        with httpx.Client(timeout=600) as client:
            top = client.post(f"{theirs}/predictions/{MODEL}", content=png).json()
            target = int(max(top, key=top.get))  # the stock handler explains class 0 unless told
            requests = calls(ours.url, theirs, png, target)
            single = {
                "predict": one_client(client, "predict", requests["predict"], plan.torchserve_predict_repeats),
                "IG-15": one_client(client, "IG-15", requests["IG-15"], plan.torchserve_ig_repeats),
            }
            default = client.post(**{**requests["IG-15"]["ours"], "params": {"method": json.dumps(IG)}})
        many: dict[str, dict[str, list[float]]] = {kind: {"ours": [], "torchserve": []} for kind in requests}
        for r in range(plan.torchserve_rounds):
            for kind, sides in requests.items():
                for side in sides if r % 2 == 0 else list(sides)[::-1]:
                    many[kind][side].append(asyncio.run(closed_loop(sides[side], PER_CLIENT[kind])))
        errors = ours.errors()
    report.rows += rows(single, many, plan.torchserve_rounds)
    explained = single["IG-15"]["ours"]["response"].json()["results"][0]["target"]["index"]
    corr, how = agreement(single["IG-15"]["ours"]["value"], single["IG-15"]["torchserve"]["value"])
    if explained != target:
        how += f"; NOT the same class: ours {explained}, TorchServe {target}"
    report.rows.append(Row("torchserve: IG-15 map correlation", corr, 1.0, "r", None, how, valid=explained == target))
    predictions = same_predictions(single["predict"]["ours"]["value"], top)
    report.notes += [
        f"torchserve: resnet18, one state_dict; a 320x240 PNG, shorter side 256 + centre crop 224 on both (our "
        f"input vs the stock handler's: {same_input(picture, config)}); class explained {target}, top 1 of both; "
        f"predictions: {predictions}",
        f"torchserve: TorchServe {WORKERS} worker, batch size 1; our IG answer with the default output (max_abs, "
        f"minmax, float32 224x224) {default.num_bytes_downloaded / 1000:.0f} kB; our server's log: "
        f"{errors or 'no errors'}",
    ]
    return report
