"""What an audit keeps while it runs: per class (predicted, true, and true split into right and wrong) the sum
of the maps, the region fractions, the first few examples and token scores; and the images whose maps put the
largest fraction of their mass inside the region. Memory stays bounded however many inputs there are."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import numpy as np
from saliency_client import ExplainResult, Token

from .inputs import Item
from .region import Region, fraction, peak_inside


@dataclass
class Example:
    """One explained input, as the report shows it."""

    name: str
    source: str  # the image's path, or the text
    saliency: np.ndarray  # (H, W) min-max normalized map, or (T,) token scores
    tokens: list[Token] | None
    predicted: str
    probability: float
    truth: str | None
    fraction: float | None  # of the map's mass inside the region


@dataclass
class Group:
    """The inputs of one class: how many, their summed map, region fractions, examples and token scores."""

    keep: int  # examples to keep
    count: int = 0
    map_sum: np.ndarray | None = None
    fractions: list[float] = field(default_factory=list)
    peaks_inside: int = 0
    examples: list[Example] = field(default_factory=list)
    token_sums: dict[str, list[float]] = field(default_factory=dict)  # token -> [sum of scores, occurrences]

    def add(self, example: Example, region: Region | None) -> None:
        self.count += 1
        if example.tokens is None:
            self.map_sum = example.saliency.astype(np.float64) + (0 if self.map_sum is None else self.map_sum)
            if region is not None and example.fraction is not None:
                self.fractions.append(example.fraction)
                self.peaks_inside += peak_inside(example.saliency, region)
        else:
            for token in example.tokens:
                if not token.special and token.score is not None:
                    entry = self.token_sums.setdefault(token.text.lower(), [0.0, 0])
                    entry[0] += token.score
                    entry[1] += 1
        if len(self.examples) < self.keep:
            self.examples.append(example)

    @property
    def mean_map(self) -> np.ndarray | None:
        return None if self.map_sum is None else self.map_sum / self.count

    @property
    def mean_fraction(self) -> float | None:
        return float(np.mean(self.fractions)) if self.fractions else None

    def top_tokens(self, k: int) -> list[tuple[str, float, int]]:
        """(token, mean score, occurrences) of the k tokens with the highest mean score, among the tokens seen
        at least 3 times (fewer in a class of fewer texts), so that one lucky occurrence does not lead."""
        least = min(3, self.count)
        means = [(text, total / n, int(n)) for text, (total, n) in self.token_sums.items() if n >= least]
        return sorted(means, key=lambda t: (-t[1], t[0]))[:k]


class Audit:
    """Every explained input goes through add(); the report and the summary read the groups."""

    def __init__(self, classes: list[str], region: Region | None, examples: int = 4, top: int = 8) -> None:
        self.classes, self.region, self.examples, self.top = classes, region, examples, top
        self.predicted = {c: Group(examples) for c in classes}
        self.truth = {c: Group(0) for c in classes}
        self.right = {c: Group(examples) for c in classes}
        self.wrong = {c: Group(examples) for c in classes}
        self.highest: list[tuple[float, int, Example]] = []  # a min-heap of the `top` largest region fractions
        self.skipped: list[tuple[str, str]] = []
        self.empty_maps = 0  # maps with no mass (all zero): they have no region fraction
        self._order = itertools.count()

    def skip(self, item: Item, reason: str) -> None:
        self.skipped.append((item.name, reason))

    def add(self, item: Item, truth: str | None, result: ExplainResult) -> None:
        explanation = result.explanation
        assert explanation.saliency is not None  # the audit asks for float32 maps
        saliency = np.maximum(explanation.saliency.astype(np.float32), 0)  # min-max normalized: >= 0 already
        label = result.target.label if result.target.label is not None else str(result.target.index)
        share = fraction(saliency, self.region) if self.region is not None and explanation.tokens is None else None
        if self.region is not None and explanation.tokens is None and share is None:
            self.empty_maps += 1
        example = Example(
            item.name, item.source, saliency, explanation.tokens, label, result.target.probability, truth, share
        )
        self.predicted.setdefault(label, Group(self.examples)).add(example, self.region)
        if truth is not None:
            self.truth[truth].add(example, self.region)
            (self.right if truth == label else self.wrong)[truth].add(example, self.region)
        if share is not None:
            entry = (share, -next(self._order), example)  # on ties, the earlier input stays
            if len(self.highest) < self.top:
                heapq.heappush(self.highest, entry)
            elif entry[:2] > self.highest[0][:2]:
                heapq.heapreplace(self.highest, entry)

    @property
    def explained(self) -> int:
        return sum(g.count for g in self.predicted.values())

    @property
    def labelled(self) -> int:
        return sum(g.count for g in self.truth.values())

    @property
    def accuracy(self) -> float | None:
        return sum(g.count for g in self.right.values()) / self.labelled if self.labelled else None

    def highest_fractions(self) -> list[Example]:
        return [example for _, _, example in sorted(self.highest, key=lambda e: e[:2], reverse=True)]

    def summary(self, tokens: int = 5) -> dict:
        """The numbers of the report, for scripts: per predicted and per true class."""

        def numbers(group: Group) -> dict:
            out: dict = {"count": group.count}
            if self.region is not None and group.map_sum is not None:
                out["region_fraction"] = rounded(group.mean_fraction)
                out["peak_in_region"] = rounded(group.peaks_inside / len(group.fractions) if group.fractions else None)
            if group.mean_map is not None and group.count:
                y, x = np.unravel_index(int(np.argmax(group.mean_map)), group.mean_map.shape)
                out["mean_map_peak"] = [int(x), int(y)]
            if group.token_sums:
                out["top_tokens"] = [[t, round(s, 4), n] for t, s, n in group.top_tokens(tokens)]
            return out

        truth = {}
        for c, group in self.truth.items():
            if group.count:
                truth[c] = numbers(group) | {"accuracy": rounded(self.right[c].count / group.count)}
        return {
            "explained": self.explained,
            "skipped": len(self.skipped),
            "labelled": self.labelled,
            "accuracy": rounded(self.accuracy),
            "region": str(self.region) if self.region is not None else None,
            "predicted": {c: numbers(g) for c, g in self.predicted.items() if g.count},
            "true": truth,
        }


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
