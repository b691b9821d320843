"""How far to trust each method's maps on the demo: faithfulness and sanity checks, through the HTTP API.

    python -m tools.demo.trust [-n 16] [--methods gradient,gradcam]

For every image method, on fresh `shapes` samples: the mean deletion and insertion AUC of its maps next to
a random ranking's, and the verdicts of the model randomization and data randomization (`shapes-random-labels`)
tests with the similarity they were read from. Prints the table that the README shows.
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
}
SEED = 424_242  # fresh samples: outside the demo models' training and evaluation seeds
REFERENCE = "shapes-random-labels"


@dataclass
class Row:
    method: str
    deletion: tuple[float, ...]  # mean AUC, mean random AUC
    insertion: tuple[float, ...]
    model_randomization: dict[str, Any]
    data_randomization: dict[str, Any]


def encoded(images: np.ndarray) -> list[str]:
    out = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG")
        out.append(base64.b64encode(buffer.getvalue()).decode())
    return out


def spec(name: str) -> dict[str, Any]:
    return {"name": name, **METHODS.get(name, {})}


def measure(client: TestClient, images: list[str], method: str, steps: int = 16) -> Row:
    body = {
        "images": images,
        "method": spec(method),
        "evaluate": {"metrics": ["deletion", "insertion"], "steps": steps},
    }
    explained = checked(client.post("/v1/models/shapes/explain", json=body))
    scores = {
        metric: tuple(
            float(np.mean([r["faithfulness"][metric][k] for r in explained["results"]])) for k in ("auc", "random_auc")
        )
        for metric in ("deletion", "insertion")
    }
    tests = {}
    for test, extra in (("model_randomization", {}), ("data_randomization", {"reference_model": REFERENCE})):
        answer = checked(
            client.post(
                "/v1/models/shapes/sanity", json={"images": images, "methods": [spec(method)], "test": test, **extra}
            )
        )
        tests[test] = answer["results"][0]
    return Row(
        method, scores["deletion"], scores["insertion"], tests["model_randomization"], tests["data_randomization"]
    )


def checked(response) -> dict[str, Any]:
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code}: {response.text}")
    return response.json()


def measure_all(n: int, methods: list[str]) -> list[Row]:
    images = encoded(shapes.generate(n, SEED).images)
    settings = Settings(max_passes_per_request=10**7, max_queue_rows=10**7, request_timeout_s=3600)
    with TestClient(create_app(settings)) as client:
        return [measure(client, images, method) for method in methods]


def cell(result: dict[str, Any]) -> str:
    mean_rho, mean_ssim = np.mean(result["spearman"]), np.mean([s for s in result["ssim"] if s is not None])
    return f"**{result['verdict']}** ({mean_rho:.2f} / {mean_ssim:.2f})"


def table(rows: list[Row]) -> str:
    lines = [
        "| method | deletion AUC (random) | insertion AUC (random) | model randomization (rho / SSIM) "
        "| data randomization (rho / SSIM) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.method} | {r.deletion[0]:.3f} ({r.deletion[1]:.3f}) | {r.insertion[0]:.3f} ({r.insertion[1]:.3f}) "
            f"| {cell(r.model_randomization)} | {cell(r.data_randomization)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=16, help="images")
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args(argv)
    rows = measure_all(args.n, args.methods.split(","))
    print(table(rows))
    for r in rows:
        for test in ("model_randomization", "data_randomization"):
            result = getattr(r, test)
            print(f"{r.method} {test}: steps {result['steps']}")
            rho, ssim = [round(v, 3) for v in result["spearman"]], [round(v or 0, 3) for v in result["ssim"]]
            print(f"  spearman {rho}  ssim {ssim}")


if __name__ == "__main__":
    main()
