"""How far to trust each method's maps on the demo: faithfulness, sanity checks and watermark mass, over HTTP.

    python -m tools.demo.trust [-n 16] [--methods gradient,gradcam] [--models shapes,shapes-vit]

Per model (the CNN `shapes`, the transformer `shapes-vit`) and image method, on fresh samples: the mean deletion
and insertion AUC of its maps next to a random ranking's, and the verdicts of the model randomization and data
randomization tests with the similarity they were read from. The data randomization reference
(`shapes-random-labels`) exists for the CNN only. Then, on the same samples all carrying the watermark, the mean
fraction of each map's mass inside the watermark box (the audit's `--region`) for both watermark models and
their clean twins, whatever `--models` says. A method a model does not support (the service's 422) is "n/a".
Prints the README's tables.
"""

from __future__ import annotations

import argparse
import base64
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from saliency_client.convert import decode_array

from service.cli.audit.region import Region, fraction
from service.demo import shapes
from service.main import create_app
from service.settings import Settings

# Cheaper settings of the costly methods (each runs six times per image); defaults elsewhere.
METHODS: dict[str, dict[str, Any]] = {
    "gradient": {},
    "input_x_gradient": {},
    "smoothgrad": {"samples": 16, "seed": 0},
    "integrated_gradients": {"steps": 16},
    "gradcam": {},
    "gradcam_pp": {},
    "xgradcam": {},
    "layercam": {},
    "scorecam": {},
    "eigencam": {},
    "occlusion": {"window": 16, "stride": 8},
    "rise": {"masks": 250, "seed": 0},
    "guided_backprop": {},
    "guided_gradcam": {},
    "attention_rollout": {},
    "attention_relevance": {},
}
SEED = 424_242  # fresh samples: outside the demo models' training and evaluation seeds
REFERENCES = {"shapes": "shapes-random-labels", "shapes-vit": None}  # model -> its data randomization reference
WATERMARKED = {"shapes": "shapes-watermark", "shapes-vit": "shapes-vit-watermark"}  # clean model -> its twin
(_ROW, _COL), _SIDE = shapes.WATERMARK_TOP_LEFT, shapes.WATERMARK_SIZE
WATERMARK = Region(_COL, _ROW, _COL + _SIDE, _ROW + _SIDE)


class Refused(Exception):
    """The service answered 422: the method does not apply to the model (its message says why)."""


@dataclass
class Row:
    method: str
    deletion: tuple[float, ...] | None  # mean AUC, mean random AUC
    insertion: tuple[float, ...] | None
    model_randomization: dict[str, Any] | None
    data_randomization: dict[str, Any] | None
    refused: str | None = None


def encoded(images: np.ndarray) -> list[str]:
    out = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG")
        out.append(base64.b64encode(buffer.getvalue()).decode())
    return out


def spec(name: str) -> dict[str, Any]:
    return {"name": name, **METHODS.get(name, {})}


def checked(response) -> dict[str, Any]:
    if response.status_code == 422:
        raise Refused(response.json().get("error", {}).get("message", response.text))
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code}: {response.text}")
    return response.json()


def measure(client: TestClient, model: str, images: list[str], method: str, steps: int = 16) -> Row:
    body = {
        "images": images,
        "method": spec(method),
        "evaluate": {"metrics": ["deletion", "insertion"], "steps": steps},
    }
    try:
        explained = checked(client.post(f"/v1/models/{model}/explain", json=body))
    except Refused as refused:
        return Row(method, None, None, None, None, str(refused))
    scores = {
        metric: tuple(
            float(np.mean([r["faithfulness"][metric][k] for r in explained["results"]])) for k in ("auc", "random_auc")
        )
        for metric in ("deletion", "insertion")
    }
    tests: dict[str, dict[str, Any] | None] = {"model_randomization": None, "data_randomization": None}
    refusals = []
    reference = REFERENCES.get(model)
    for test, extra in (("model_randomization", {}), ("data_randomization", {"reference_model": reference})):
        if test == "data_randomization" and reference is None:
            continue
        request = {"images": images, "methods": [spec(method)], "test": test, **extra}
        try:
            tests[test] = checked(client.post(f"/v1/models/{model}/sanity", json=request))["results"][0]
        except Refused as refused:
            refusals.append(f"{test}: {refused}")
    return Row(
        method,
        scores["deletion"],
        scores["insertion"],
        tests["model_randomization"],
        tests["data_randomization"],
        "; ".join(refusals) or None,
    )


def watermark_mass(client: TestClient, model: str, images: list[str], method: str) -> float | None:
    """The mean share of the maps' mass inside the watermark, as the audit computes it; None where refused."""
    body = {"images": images, "method": spec(method), "output": {"saliency": "float32"}}
    try:
        results = checked(client.post(f"/v1/models/{model}/explain", json=body))["results"]
    except Refused:
        return None
    shares = [fraction(np.maximum(decode_array(r["saliency"]), 0), WATERMARK) for r in results]
    return float(np.mean([s for s in shares if s is not None]))


def measure_all(n: int, methods: list[str], models: list[str]) -> tuple[dict[str, list[Row]], dict[str, dict]]:
    images = encoded(shapes.generate(n, SEED).images)
    marked = encoded(shapes.generate(n, SEED, watermark_all=True).images)
    settings = Settings(max_passes_per_request=10**7, max_queue_rows=10**7, request_timeout_s=3600)
    with TestClient(create_app(settings)) as client:
        rows = {model: [measure(client, model, images, method) for method in methods] for model in models}
        twins = [m for model in WATERMARKED for m in (WATERMARKED[model], model)]  # cheap: always both pairs
        masses = {method: {m: watermark_mass(client, m, marked, method) for m in twins} for method in methods}
    return rows, masses


def cell(result: dict[str, Any] | None) -> str:
    if result is None:
        return "n/a"
    mean_rho, mean_ssim = np.mean(result["spearman"]), np.mean([s for s in result["ssim"] if s is not None])
    return f"**{result['verdict']}** ({mean_rho:.2f} / {mean_ssim:.2f})"


def auc(pair: tuple[float, ...] | None) -> str:
    return "n/a" if pair is None else f"{pair[0]:.3f} ({pair[1]:.3f})"


def table(rows: list[Row]) -> str:
    lines = [
        "| method | deletion AUC (random) | insertion AUC (random) | model randomization (rho / SSIM) "
        "| data randomization (rho / SSIM) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.method} | {auc(r.deletion)} | {auc(r.insertion)} "
            f"| {cell(r.model_randomization)} | {cell(r.data_randomization)} |"
        )
    return "\n".join(lines)


def mass_table(masses: dict[str, dict[str, float | None]]) -> str:
    models = list(next(iter(masses.values())))
    lines = ["| method | " + " | ".join(f"`{m}`" for m in models) + " |", "|---" * (len(models) + 1) + "|"]
    for method, row in masses.items():
        values = ["n/a" if v is None else f"{v:.2%}".replace("%", " %") for v in row.values()]
        lines.append(f"| {method} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=16, help="images")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--models", default=",".join(REFERENCES), help=f"among {', '.join(REFERENCES)}")
    args = parser.parse_args(argv)
    rows, masses = measure_all(args.n, args.methods.split(","), args.models.split(","))
    for model, model_rows in rows.items():
        print(f"\n`{model}`:\n\n{table(model_rows)}")
    share = WATERMARK.share(shapes.IMAGE_SIZE, shapes.IMAGE_SIZE)
    print(f"\nWatermark mass (a uniform map: {share:.2%}):\n\n{mass_table(masses)}")
    for model, model_rows in rows.items():
        for r in model_rows:
            if r.refused:
                print(f"{model} {r.method}: refused: {r.refused}")
            for test in ("model_randomization", "data_randomization"):
                result = getattr(r, test)
                if result is not None:
                    rho, ssim = [round(v, 3) for v in result["spearman"]], [round(v or 0, 3) for v in result["ssim"]]
                    steps = [step.rpartition("+")[2] for step in result["steps"]]  # each adds one block
                    print(f"{model} {r.method} {test}: steps +{' +'.join(steps)}\n  spearman {rho}  ssim {ssim}")


if __name__ == "__main__":
    main()
