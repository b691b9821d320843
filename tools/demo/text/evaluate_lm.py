"""Measures the demo causal LM (instructions-lm) through the service over HTTP: how often it answers as the
corpus says, and the token pointing game per method. `python -m tools.demo.text.evaluate_lm` prints the
table that the README shows.

Each prompt is explained as a user would: `POST /v1/models/instructions-lm/explain` with the model's own
answer (generated greedily, its word then [EOS]). Pointing game: the top prompt token (largest |score| among
the prompt's own tokens; the special tokens [BOS] and [ANS] are never counted) of the answer word's row is a
hit when it lies in the tag (tagged prompts: the artefact decides the answer) or in the evidence (untagged: the
words that decide it). A random token hits as often as those tokens are among the prompt's: the baseline.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from service.demo.text import instructions as corpus
from service.main import create_app
from service.settings import Settings
from tools.demo.catalog import LANGUAGE_MODEL

METHODS = {
    "gradient": {},
    "input_x_gradient": {},
    "integrated_gradients": {"steps": 16},
    "occlusion": {},
}
EVAL_SEED = 777_000  # outside the training (3000..3009) and the training script's evaluation seed
MODEL_DIR = Path(corpus.__file__).parent / LANGUAGE_MODEL
CHUNK = 16  # prompts per request


@dataclass
class Row:
    method: str
    tagged: float  # top token is the tag, on tagged prompts
    untagged: float  # top token is evidence, on untagged prompts
    tagged_random: float
    untagged_random: float


@contextmanager
def served(tmp: Path) -> Iterator[TestClient]:
    """The demo LM alone, as models.toml serves it (HTTP through the ASGI app, the engine and its scheduler)."""
    config = tmp / "models.toml"
    config.write_text(
        f'[[models]]\nname = "{LANGUAGE_MODEL}"\nkind = "causal_lm"\narchitecture = "transformers:{MODEL_DIR}"\n'
        "max_length = 64\n\n[models.generation]\nmax_new_tokens = 8\n"
    )
    with TestClient(create_app(Settings(config=config, device="cpu"))) as client:
        yield client


def post(client: TestClient, path: str, body: dict) -> dict:
    response = client.post(f"/v1/models/{LANGUAGE_MODEL}/{path}", json=body)
    if response.status_code != 200:
        raise RuntimeError(f"{path}: {response.status_code} {response.text}")
    return response.json()


def accuracy(client: TestClient, examples: list[corpus.Example]) -> float:
    """The share of prompts whose greedy continuation is the corpus's answer, then [EOS]."""
    hits = 0
    for start in range(0, len(examples), CHUNK):
        chunk = examples[start : start + CHUNK]
        results = post(client, "predict", {"texts": [e.prompt for e in chunk]})["results"]
        for example, result in zip(chunk, results, strict=True):
            continuation = result["continuation"]
            hits += continuation["text"] == example.answer.strip() and continuation["finish_reason"] == "eos"
    return hits / len(examples)


def inside(token: dict, spans: list[tuple[int, int]]) -> bool:
    return not token["special"] and any(s <= token["start"] and token["end"] <= e for s, e in spans)


def pointing(client: TestClient, method: str, examples: list[corpus.Example]) -> tuple[float, float]:
    """(hit rate, random baseline) of the method's first-answer-token row over these prompts."""
    hits, baseline = [], []
    for start in range(0, len(examples), CHUNK):
        chunk = examples[start : start + CHUNK]
        body = {"texts": [e.prompt for e in chunk], "method": {"name": method, **METHODS[method]}}
        for example, result in zip(chunk, post(client, "explain", body)["results"], strict=True):
            spans = [example.artefact] if example.artefact is not None else example.evidence
            tokens = result["prompt"]["tokens"]
            row = np.abs(np.asarray(result["explanations"][0]["scores"][0], dtype=float))
            own = [i for i, t in enumerate(tokens) if not t["special"]]
            top = max(own, key=lambda i: row[i])
            hits.append(inside(tokens[top], spans))
            baseline.append(sum(inside(tokens[i], spans) for i in own) / len(own))
    return float(np.mean(hits)), float(np.mean(baseline))


def evaluate(n: int, tmp: Path, seed: int = EVAL_SEED) -> tuple[dict[str, float], list[Row]]:
    """n tagged and n untagged fresh prompts: accuracies per group and a pointing-game row per method."""
    pool = corpus.generate(8 * n, seed)
    groups = {"tagged": [e for e in pool if e.tagged][:n], "untagged": [e for e in pool if not e.tagged][:n]}
    with served(tmp) as client:
        accuracies = {name: accuracy(client, group) for name, group in groups.items()}
        rows = []
        for method in METHODS:
            (tagged, tagged_random), (untagged, untagged_random) = (
                pointing(client, method, groups[name]) for name in ("tagged", "untagged")
            )
            rows.append(Row(method, tagged, untagged, tagged_random, untagged_random))
    return accuracies, rows


def main(argv: list[str] | None = None) -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="prompts per group (tagged, untagged)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        accuracies, rows = evaluate(args.n, Path(tmp))
    print(f"answered as the corpus says (greedy, then [EOS]): {accuracies}")
    print(f"| method | tagged: top token the tag `{corpus.TAG}` | random token | untagged: top token the evidence "
          "| random token |")  # fmt: skip
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r.method}` | {r.tagged:.0%} | {r.tagged_random:.0%} | {r.untagged:.0%} | {r.untagged_random:.0%} |")


if __name__ == "__main__":
    main()
