"""Our engine against Captum, at equal results, on one image and the predicted class.

Ours: the call the server makes (`service.runner.run_explain`: the engine with the chunk size the memory
budget allows), which returns the prediction with the map. Captum: a prediction forward under no_grad, then
`attribute` for that class, with its internal batch set to our chunk size. The maps are checked to agree
(SmoothGrad draws different noise, so its agreement is a correlation, shown next to the correlation of two of
our own runs with different seeds).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from captum.attr import (
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from torch import Tensor

from service.explainers import PixelSpace, default_registry
from service.explainers.hooks import find_module
from service.runner import chunk_rows, run_explain

from .common import Context, Plan, Report, Row, load_model, median, model_input, timed, write_config

# Captum sets requires_grad on the input itself and says so; that is expected here.
warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")


def captum_calls(loaded, x: Tensor, plan: Plan, chunk: int) -> dict[str, Callable[[Tensor], Tensor]]:
    """method -> attribute(target) returning (N, C, H, W) or, for Grad-CAM, (N, H, W)."""
    model = loaded.module
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
            nt_samples_batch_size=chunk,
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
            internal_batch_size=chunk,
        ),
        "occlusion": lambda t: Occlusion(model).attribute(
            x,
            sliding_window_shapes=(c, w, w),
            strides=(c, s, s),
            baselines=0.0,
            target=t,
            perturbations_per_eval=chunk,
        ),
    }


def our_specs(plan: Plan) -> dict[str, dict]:
    w, s = plan.occlusion_window, plan.occlusion_stride
    return {
        "gradient": {"name": "gradient"},
        "gradcam": {"name": "gradcam"},
        "smoothgrad": {"name": "smoothgrad", "samples": plan.smoothgrad_samples, "noise": 0.15},
        "integrated_gradients": {"name": "integrated_gradients", "steps": plan.ig_steps, "baseline": "black"},
        "occlusion": {"name": "occlusion", "window": w, "stride": s, "baseline": "zero"},
    }


TARGETS = {"gradient": 0.7, "gradcam": 0.7, "smoothgrad": 1.0, "integrated_gradients": 1.0, "occlusion": 1.0}


def correlation(a: Tensor, b: Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten().double(), b.flatten().double()]))[0, 1])


def agreement(method: str, ours: Tensor, theirs: Tensor, again: Tensor | None) -> tuple[bool, str]:
    ours, theirs = ours.float().cpu(), theirs.float().cpu()
    if method == "smoothgrad":
        corr, own = correlation(ours, theirs), correlation(ours, again)
        # Two estimates from independent noise agree as well as two of ours do: the same quantity.
        return corr >= own - 0.05, f"corr with Captum {corr:.3f} (ours vs ours, other seed {own:.3f})"
    peak = float(theirs.abs().max()) or 1.0
    err = float((ours - theirs).abs().max()) / peak
    ok = torch.allclose(ours, theirs, rtol=1e-3, atol=1e-4 * peak)
    return ok, f"{'allclose' if ok else 'NOT allclose'}, max err {err:.1e} of peak"


def compare(ours: Callable[[], Tensor], theirs: Callable[[], Tensor], repeats: int, warm: bool, device) -> dict:
    """Median seconds of each side, alternating which goes first so drift in the machine's load is shared."""
    results: dict[str, Tensor] = {}
    sides = {"ours": ours, "theirs": theirs}

    def call(side: str) -> None:
        results[side] = sides[side]().detach()

    if warm:  # a heavy method's first of hundreds of passes hardly counts: only light ones warm up
        for side in sides:
            call(side)
    times: dict[str, list[float]] = {"ours": [], "theirs": []}
    for i in range(repeats):
        for side in ("ours", "theirs") if i % 2 == 0 else ("theirs", "ours"):
            times[side].append(timed(lambda side=side: call(side), device))
    return {side: median(t) for side, t in times.items()} | {"maps": results}


def run(ctx: Context) -> Report:
    plan = ctx.plan
    loaded, settings = load_model(write_config(ctx.folder, "resnet18", plan.size), plan.device)
    model, x = loaded.module, model_input(loaded)
    chunk = chunk_rows(loaded, settings)
    registry = default_registry()
    calls = captum_calls(loaded, x, plan, chunk)
    predicted = torch.full((1,), -1, dtype=torch.long)
    report = Report()
    for method, spec in our_specs(plan).items():
        explainer, params = registry.parse(spec)
        light = method in ("gradient", "gradcam")
        repeats = plan.light_repeats if light else plan.heavy_repeats
        repeats = plan.occlusion_repeats if method == "occlusion" else repeats

        def ours(params=params, explainer=explainer) -> Tensor:
            return run_explain(loaded, explainer, params, x, predicted, "logit", settings).attributions

        def theirs(method=method) -> Tensor:
            with torch.no_grad():
                target = model(x).argmax(dim=1)
            return calls[method](target)

        result = compare(ours, theirs, repeats, light, plan.device)
        again = None
        if method == "smoothgrad":
            again = ours(params=registry.parse({**spec, "seed": 1})[1])
        ok, note = agreement(method, result["maps"]["ours"], result["maps"]["theirs"], again)
        report.rows.append(
            Row(
                f"vs Captum: {method}",
                result["ours"] * 1000,
                result["theirs"] * 1000,
                "ms",
                ("<=", TARGETS[method]),
                f"{note}; median of {repeats}",
                valid=ok,
            )
        )
    report.notes.append(
        f"vs Captum: resnet18 {plan.size}px, one image, predicted class; SmoothGrad {plan.smoothgrad_samples} samples, "
        f"IG {plan.ig_steps} steps (Gauss-Legendre, black baseline), occlusion window {plan.occlusion_window} stride "
        f"{plan.occlusion_stride}; Captum's internal batch = our chunk ({chunk} rows)"
    )
    return report
