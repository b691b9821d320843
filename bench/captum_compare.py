"""Against Captum, at equal results, on one image and the predicted class: end to end, and the engine alone.

Ours, end to end (the rows with targets): the HTTP explain call to a real server (bench/common.py), with the
prediction in the answer and the raw attribution back as a float32 array (`reduce` and `normalize` "none",
no PNG); the client's JSON parse and base64 decode of the array are included. The image goes as a lossless
PNG already at the model's input size (resize "exact" is then the identity), so the server's input tensor
is exactly the one Captum gets; that is checked before timing. Ours, engine only (info rows):
`service.core.plans.explain_here` on the same model object, the server's compute without decode, HTTP or encode.

Captum: in this process, on the user's own model as the server loaded it, unprepared
(`loaded.prepared.original`; the server's passes run on the BatchNorm-folded copy, which differs by float
rounding): a prediction forward under no_grad, then `attribute` for that class with the same steps, samples
and windows as our request, as a user writes it: Captum's defaults (SmoothGrad and IG in one batch; occlusion
64 windows per eval), and, in info rows, at the internal batch that is fastest on this machine. The sides
alternate within each repeat, so a change in the machine's load hits them alike. The maps must agree
(`agreement`: allclose, or as close to the float64 result as Captum's own float32 map; SmoothGrad draws
different noise, so its agreement is a correlation, shown next to the correlation of two of our own maps
with different seeds).
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import math
import warnings
from collections.abc import Callable

import httpx
import numpy as np
import torch
from captum.attr import (
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from torch import Tensor, nn

from service.codecs import codec_for
from service.codecs.options import OutputOptions
from service.core.plans import explain_here
from service.engine.hooks import find_module
from service.explainers import PixelSpace, default_registry

from .common import (
    MODEL,
    Context,
    Plan,
    Report,
    Row,
    median,
    png_bytes,
    sample_image,
    timed,
    to_input,
    user_model,
    write_config,
)

# Captum sets requires_grad on the input itself and says so; that is expected here.
warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")

RAW = {"saliency": "float32", "reduce": "none", "normalize": "none"}  # the attribution as computed, no PNG
TARGETS = {"gradient": 0.8, "gradcam": 0.8, "smoothgrad": 0.9, "integrated_gradients": 0.9, "occlusion": 0.9}


CAPTUM_DEFAULTS = {"smoothgrad": None, "integrated_gradients": None, "occlusion": 64}  # what a user writes
BATCHED = tuple(CAPTUM_DEFAULTS)
BATCH_CANDIDATES = (4, 8, 16, 32, None)  # None: every sample, step or window in one batch


def captum_calls(
    model: nn.Module, loaded, x: Tensor, plan: Plan, batch: dict[str, int | None] | None = None
) -> dict[str, Callable[[Tensor], Tensor]]:
    """method -> attribute(target) on `model`, returning (N, C, H, W) or, for Grad-CAM, (N, H, W). `batch`:
    Captum's internal batch per method (`nt_samples_batch_size`, `internal_batch_size`, `perturbations_per_eval`);
    by default what a user writes who leaves them out: one batch for SmoothGrad and IG, 64 windows per eval
    (Captum's own default, 1, would run occlusion a window at a time; nobody serving it would)."""
    batch = {**CAPTUM_DEFAULTS, **(batch or {})}
    w, s = plan.occlusion_window, plan.occlusion_stride
    every = math.prod((side - w) // s + 1 for side in x.shape[-2:])  # None: all windows in one eval
    windows = batch["occlusion"] or every
    black = PixelSpace(loaded.spec.mean, loaded.spec.std).from_pixels(torch.zeros_like(x))
    layer = find_module(model, loaded.default_layer)
    c = x.shape[1]
    w, s = plan.occlusion_window, plan.occlusion_stride

    def gradcam(t: Tensor) -> Tensor:
        cam = LayerGradCam(model, layer).attribute(x, target=t, relu_attributions=True)
        return LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")[:, 0]

    sigma = float(0.15 * (x.max() - x.min()))
    return {
        "gradient": lambda t: Saliency(model).attribute(x, target=t, abs=False),
        "gradcam": gradcam,
        "smoothgrad": lambda t: NoiseTunnel(Saliency(model)).attribute(
            x,
            nt_type="smoothgrad",
            nt_samples=plan.smoothgrad_samples,
            nt_samples_batch_size=batch["smoothgrad"],
            stdevs=sigma,
            target=t,
            abs=False,
        ),
        "integrated_gradients": lambda t: IntegratedGradients(model).attribute(
            x,
            baselines=black,
            target=t,
            n_steps=plan.ig_steps,
            method="gausslegendre",
            internal_batch_size=batch["integrated_gradients"],
        ),
        "occlusion": lambda t: Occlusion(model).attribute(
            x,
            sliding_window_shapes=(c, w, w),
            strides=(c, s, s),
            baselines=0.0,
            target=t,
            perturbations_per_eval=windows,
        ),
    }


def our_specs(plan: Plan) -> dict[str, dict]:
    w, s = plan.occlusion_window, plan.occlusion_stride
    return {
        "gradient": {"name": "gradient"},
        "gradcam": {"name": "gradcam"},
        "smoothgrad": {"name": "smoothgrad", "samples": plan.smoothgrad_samples, "noise": 0.15, "seed": 0},
        "integrated_gradients": {"name": "integrated_gradients", "steps": plan.ig_steps, "baseline": "black"},
        "occlusion": {"name": "occlusion", "window": w, "stride": s, "baseline": "zero"},
    }


def correlation(a: Tensor, b: Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten().double(), b.flatten().double()]))[0, 1])


def agreement(
    method: str, ours: Tensor, theirs: Tensor, again: Tensor | None, exact: Callable[[], Tensor] | None = None
) -> tuple[bool, str]:
    """Whether our map is Captum's, and how close. Maps that are not allclose still agree when ours is as close
    to the float64 result (`exact`: Captum's map on a float64 copy of the model) as Captum's float32 map is,
    within the preparation check's margin (tolerance + 2 x Captum's rounding error, service/models/prepare.py):
    the float32 rounding of a deep network's passes is that large (IG on a random resnet18: ~1e-2 of peak), and
    the server's folded model rounds differently from the unprepared one."""
    ours, theirs = ours.float().cpu(), theirs.float().cpu()
    if ours.numel() != theirs.numel():
        return False, f"NOT the same shape: {tuple(ours.shape)} vs Captum's {tuple(theirs.shape)}"
    ours = ours.reshape(theirs.shape)  # the server's (C, H, W) or (H, W) array vs Captum's (1, ...)
    if method == "smoothgrad":
        assert again is not None
        corr, own = correlation(ours, theirs), correlation(ours, again.reshape(theirs.shape))
        # Two estimates from independent noise agree as well as two of ours do: the same quantity.
        return corr >= own - 0.05, f"corr with Captum {corr:.3f} (ours vs ours, other seed {own:.3f})"
    peak = float(theirs.abs().max()) or 1.0
    err = float((ours - theirs).abs().max()) / peak
    ok = torch.allclose(ours, theirs, rtol=1e-3, atol=1e-4 * peak)
    if ok or exact is None:
        return ok, f"{'allclose' if ok else 'NOT allclose'}, max err {err:.1e} of peak"
    reference = exact().double().cpu().reshape(theirs.shape)
    scale = float(reference.abs().max()) or 1.0
    mine, captums = (float((m.double() - reference).abs().max()) / scale for m in (ours, theirs))
    ok = mine <= TOLERANCE + 2 * captums
    return ok, (
        f"not allclose (max err {err:.1e} of peak), {'but' if ok else 'and NOT'} as close to float64 as Captum's "
        f"float32 map: ours {mine:.1e}, Captum {captums:.1e} of peak"
    )


TOLERANCE = 1e-3  # beyond float rounding, relative to the peak (as service/models/prepare.py's default)


def compare(sides: dict[str, Callable[[], Tensor]], repeats: int, warm: bool, device) -> dict:
    """Median seconds of each side; the order turns round every repeat, so drift in the machine's load is shared.
    Returns {side: seconds, ..., "maps": {side: the last map}}."""
    maps: dict[str, Tensor] = {}

    def call(side: str) -> None:
        maps[side] = sides[side]().detach()

    if warm:  # a heavy method's first of hundreds of passes hardly counts: only light ones warm up
        for side in sides:
            call(side)
    times: dict[str, list[float]] = {side: [] for side in sides}
    order = list(sides)
    for i in range(repeats):
        for side in order if i % 2 == 0 else order[::-1]:
            times[side].append(timed(lambda side=side: call(side), device))
    return {side: median(t) for side, t in times.items()} | {"maps": maps}


def expected_input(loaded, settings, image: bytes) -> Tensor:
    """The (1, C, H, W) tensor Captum gets: `to_input` on the picture. Checked to be exactly what the server's
    decode makes of the PNG it is sent, values and memory layout, so that both sides explain the same input.

    `to_input` returns a (C, H, W) view of the picture's (H, W, C) pixels, channels-last in memory; the
    server's decode stacks it into a contiguous batch. Uncorrected, every pass of the Captum and engine-only
    sides would run channels-last, 10-25 % slower at 112 px on this CPU than the server's passes."""
    picture = sample_image(loaded.spec.input_size[0])
    x = to_input(picture, loaded.spec)[0][None].contiguous().to(loaded.device)
    codec, output, images = codec_for(loaded.spec.kind), OutputOptions(**RAW), [base64.b64encode(image).decode("ascii")]
    served = codec.decode(codec.admit(images, loaded, settings, [], output), loaded, settings, output).x
    assert loaded.spec.resize == "exact" and tuple(loaded.spec.input_size) == (picture.height, picture.width)
    assert torch.equal(served.to(x.device), x), "the server's decoded input differs from the one Captum gets"
    assert served.stride() == x.stride(), f"memory layouts differ: server {served.stride()}, Captum {x.stride()}"
    return x


def http_map(client: httpx.Client, body: bytes, predicted: list[int]) -> Tensor:
    """The explain call as a client makes it: POST, parse, base64 -> float32 array. Its class goes to `predicted`."""
    response = client.post(f"/v1/models/{MODEL}/explain", content=body, headers={"content-type": "application/json"})
    response.raise_for_status()
    result = response.json()["results"][0]
    array = result["saliency"]
    assert array["dtype"] == "float32"
    values = np.frombuffer(base64.b64decode(array["data"]), dtype="<f4").reshape(array["shape"])
    predicted.append(result["target"]["index"])
    return torch.from_numpy(values.copy())


def run(ctx: Context) -> Report:
    plan = ctx.plan
    served = ctx.servers.get(write_config(ctx.folder, "resnet18", plan.captum_size), plan.device)
    loaded, settings = served.loaded, served.settings
    model = user_model(loaded)  # Captum's side: the unprepared model object the server loaded
    image = png_bytes(sample_image(plan.captum_size))
    x = expected_input(loaded, settings, image)
    registry = default_registry()
    calls = captum_calls(model, loaded, x, plan)
    best = best_batches(model, loaded, x, plan)
    tuned = captum_calls(model, loaded, x, plan, best)
    predicted = torch.full((1,), -1, dtype=torch.long)
    b64 = base64.b64encode(image).decode("ascii")
    report = Report()
    engine_rows = []
    with httpx.Client(base_url=served.url, timeout=600) as client:
        for method, spec in our_specs(plan).items():
            explainer, params = registry.parse(spec)
            light = method in ("gradient", "gradcam")
            repeats = plan.light_repeats if light else plan.heavy_repeats
            repeats = plan.occlusion_repeats if method == "occlusion" else repeats
            body = json.dumps({"images": [b64], "method": spec, "output": RAW}).encode()
            classes: dict[str, list[int]] = {"e2e": [], "captum": []}

            def engine(params=params, explainer=explainer) -> Tensor:
                return explain_here(loaded, explainer, params, x, predicted, "logit", settings).attributions

            def captum(method=method, seen=classes["captum"]) -> Tensor:
                with torch.no_grad():
                    target = model(x).argmax(dim=1)
                seen.append(int(target[0]))
                return calls[method](target)

            def e2e(body=body, seen=classes["e2e"]) -> Tensor:
                return http_map(client, body, seen)

            def captum_best(method=method) -> Tensor:
                with torch.no_grad():
                    target = model(x).argmax(dim=1)
                return tuned[method](target)

            sides = {"e2e": e2e, "engine": engine, "captum": captum}
            if method in BATCHED:
                sides["best"] = captum_best
            result = compare(sides, repeats, light, plan.device)
            again = None
            if method == "smoothgrad":
                other = json.dumps({"images": [b64], "method": {**spec, "seed": 1}, "output": RAW}).encode()
                again = http_map(client, other, [])
            same_class = set(classes["e2e"]) == set(classes["captum"]) and len(set(classes["captum"])) == 1
            theirs = result["maps"]["captum"]

            @functools.cache
            def exact(method=method, target=classes["captum"][0]) -> Tensor:
                """Captum's map on a float64 copy of the unprepared model (only if the float32 maps differ)."""
                double = copy.deepcopy(model).double()
                calls64 = captum_calls(double, loaded, x.double(), plan)
                return calls64[method](torch.tensor([target], device=x.device))

            for side, name, target in (
                ("e2e", f"vs Captum: {method}", ("<=", TARGETS[method])),
                ("engine", f"vs Captum, engine only: {method}", None),
            ):
                ok, note = agreement(method, result["maps"][side], theirs, again, exact)
                if not same_class:
                    ok, note = False, f"{note}; NOT the same class: ours {classes['e2e']}, Captum {classes['captum']}"
                row = Row(name, result[side] * 1000, result["captum"] * 1000, "ms", target, "", valid=ok)
                row.note = f"{'end to end, ' if side == 'e2e' else 'explain_here, '}{note}; median of {repeats}"
                (report.rows if side == "e2e" else engine_rows).append(row)
            if "best" in result:
                engine_rows.append(
                    Row(
                        f"vs Captum at its best batch: {method}",
                        result["e2e"] * 1000,
                        result["best"] * 1000,
                        "ms",
                        None,
                        f"end to end against Captum at internal batch {best[method] or 'all'}, the fastest of "
                        f"{BATCH_CANDIDATES} here",
                    )
                )
    report.rows += engine_rows  # after the rows that carry the targets
    report.notes.append(
        f"vs Captum: resnet18 {plan.captum_size}px, one lossless PNG at the input size, predicted class; SmoothGrad "
        f"{plan.smoothgrad_samples} samples, IG {plan.ig_steps} steps (Gauss-Legendre, black baseline), occlusion "
        f"window {plan.occlusion_window} stride {plan.occlusion_stride}; Captum with its defaults (SmoothGrad and "
        f"IG in one batch, occlusion 64 windows per eval) and at its best batch here ({best}), on the unprepared "
        f"model, the server on its prepared one ({preparation(loaded)})"
    )
    return report


def best_batches(model: nn.Module, loaded, x: Tensor, plan: Plan) -> dict[str, int | None]:
    """Per batched method, Captum's fastest internal batch on this machine: each candidate timed twice after
    a warm-up, the fastest median wins."""
    with torch.no_grad():
        target = model(x).argmax(dim=1)
    best: dict[str, int | None] = {}
    for method in BATCHED:
        times = {}
        for size in BATCH_CANDIDATES:
            call = captum_calls(model, loaded, x, plan, {method: size})[method]
            call(target)
            times[size] = median([timed(lambda call=call: call(target), plan.device) for _ in range(2)])
        best[method] = min(times, key=lambda k: times[k])
    return best


def preparation(loaded) -> str:
    prepared = getattr(loaded, "prepared", None)
    return "; ".join(prepared.notes) if prepared is not None and prepared.notes else "nothing done"
