"""Measures the demo text models through the service's own engine: accuracy, the token pointing game per
method, and how often the shortcut model's top token is its shortcut. `python -m tools.demo.text.evaluate`
prints the table that the README shows.

Pointing game: a text's top token (largest |score| among its own tokens) is a hit when it is one of the
planted sentiment words. A random token hits as often as planted words are among the text's tokens: that is
the baseline each method is measured against.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch

from service.codecs import codec_for
from service.codecs.text.render import defaults, token_scores
from service.core.plans import explain_here, model_rows
from service.demo.text import corpus
from service.explainers import default_registry
from service.models import LoadedModel, ModelPool, load_config
from service.settings import DEMO_CONFIG, Settings

METHODS = {
    "gradient": {},
    "input_x_gradient": {},
    "smoothgrad": {"samples": 8, "seed": 0},
    "integrated_gradients": {"steps": 16},
    "occlusion": {},
}
EVAL_SEED = 123_000  # outside the training and the training script's evaluation seeds
SETTINGS = Settings(chunk_size=64)


@dataclass
class Row:
    method: str
    hit_rate: float  # top token is a planted sentiment word (clean model, clean reviews)
    random_rate: float  # what a random token scores
    shortcut_rate: float  # shortcut model, signed positive reviews: top token is the shortcut word
    clean_shortcut_rate: float  # the clean model on the same reviews, for contrast


def top_tokens(loaded: LoadedModel, method: str, reviews: list[corpus.Review]) -> list[tuple[int, int]]:
    """Each review's top token as a character span, for the predicted class."""
    codec = codec_for("text")
    explainer, params = default_registry().parse({"name": method, **METHODS[method]}, "text")
    batch = codec.decode([r.text for r in reviews], loaded, SETTINGS, None)
    targets = torch.full((len(reviews),), -1)
    result = explain_here(loaded, explainer, params, batch.x, targets, "logit", SETTINGS)
    scores = token_scores(result.attributions, defaults(explainer)[0]).abs()
    spans = []
    for i, item in enumerate(batch.items):
        own = torch.tensor([not s for s in item["special"]] + [False] * (scores.shape[1] - len(item["special"])))
        best = int(torch.where(own, scores[i], torch.tensor(-1.0)).argmax())
        spans.append(tuple(item["offsets"][best]))
    return spans


def overlaps(span: tuple[int, int], targets: list[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in targets)


def accuracy(loaded: LoadedModel, reviews: list[corpus.Review]) -> float:
    batch = codec_for("text").decode([r.text for r in reviews], loaded, SETTINGS, None)
    with torch.inference_mode():
        predicted = loaded.module(model_rows(loaded, batch.x)).argmax(dim=1)
    return float((predicted == torch.tensor([r.label for r in reviews])).float().mean())


def random_rate(loaded: LoadedModel, reviews: list[corpus.Review]) -> float:
    batch = codec_for("text").decode([r.text for r in reviews], loaded, SETTINGS, None)
    rates = []
    for review, item in zip(reviews, batch.items, strict=True):
        own = [tuple(o) for o, s in zip(item["offsets"], item["special"], strict=True) if not s]
        rates.append(sum(overlaps(o, review.evidence) for o in own) / len(own))
    return sum(rates) / len(rates)


def evaluate(n: int = 100, seed: int = EVAL_SEED) -> tuple[dict[str, float], list[Row]]:
    pool = ModelPool(load_config(DEMO_CONFIG), device="cpu")
    clean, shortcut = pool.get("reviews"), pool.get("reviews-shortcut")
    reviews = corpus.generate(n, seed)
    signed = [r for r in corpus.generate(4 * n, seed + 1, shortcut=True) if r.shortcut is not None][:n]
    own = corpus.generate(n, seed + 2, shortcut=True)  # the shortcut model on the data it learnt from
    accuracies = {"reviews": accuracy(clean, reviews), "reviews-shortcut": accuracy(shortcut, own)}
    chance = random_rate(clean, reviews)
    rows = []
    for method in METHODS:
        hits = [overlaps(s, r.evidence) for s, r in zip(top_tokens(clean, method, reviews), reviews, strict=True)]
        on_shortcut = [
            [
                overlaps(s, [r.shortcut] if r.shortcut else [])
                for s, r in zip(top_tokens(model, method, signed), signed, strict=True)
            ]
            for model in (shortcut, clean)
        ]
        rows.append(Row(method, mean(hits), chance, mean(on_shortcut[0]), mean(on_shortcut[1])))
    return accuracies, rows


def mean(values: list[bool]) -> float:
    return sum(values) / len(values)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="reviews per measurement")
    args = parser.parse_args(argv)
    accuracies, rows = evaluate(args.n)
    print(f"accuracy on fresh samples: {accuracies}")
    print("| method | top token on a sentiment word | random token | shortcut model: top token 'mike' | clean model |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| `{r.method}` | {r.hit_rate:.0%} | {r.random_rate:.0%} | {r.shortcut_rate:.0%} "
            f"| {r.clean_shortcut_rate:.0%} |"
        )


if __name__ == "__main__":
    main()
