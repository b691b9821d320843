"""The codec contract: one per modality, between a request's inputs and the engine, and back.

The core (service/core) holds a codec and never looks inside: the image codec turns base64 pictures into
(N, C, H, W) tensors and maps into arrays and PNGs; the text codec turns strings into token rows (ids and
mask; the device thread embeds them) and scores into tokens and HTML. `admit`, `decode`, `render` and
`scores` do the CPU work and run on a codec thread (codecs/workers.py), never on the event loop; `reduction`
is a lookup, called anywhere. No codec method runs the model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from torch import Tensor

from ..explainers import Explainer, Explanation
from ..explainers.postprocess import Reduce
from ..models import LoadedModel
from ..settings import Settings
from .options import OutputOptions


@dataclass
class Batch:
    x: Tensor  # the engine's input rows (N, ...), on the CPU
    items: list[Any]  # per input, what rendering needs (the picture and its crop; the tokens)


class Codec(ABC):
    kind: ClassVar[str]  # the models it serves (ModelSpec.kind)
    field: ClassVar[str]  # the request field that holds the inputs

    @abstractmethod
    def admit(
        self,
        raw: Sequence[Any],
        loaded: LoadedModel,
        settings: Settings,
        methods: list[Explainer],
        output: OutputOptions | None,
    ) -> Any:
        """Refuses what is too large from the cheapest look (headers, lengths); `output` None is a predict.
        Returns what `decode` takes. The passes are counted before, by the core (service/core/rows.py)."""

    @abstractmethod
    def decode(self, admitted: Any, loaded: LoadedModel, settings: Settings, output: OutputOptions | None) -> Batch:
        """The inputs as the engine's rows."""

    @abstractmethod
    def render(
        self, batch: Batch, results: list[Explanation], explainers: list[Explainer], output: OutputOptions
    ) -> list[list[dict[str, Any]]]:
        """Per input, per method: the response's map fields."""

    @abstractmethod
    def reduction(self, explainer: Explainer) -> Reduce:
        """How a method's raw attributions become one score per pixel or token, when the client says nothing."""

    @abstractmethod
    def scores(self, batch: Batch, result: Explanation, explainer: Explainer) -> list[np.ndarray]:
        """Per input, its map under the default reduction, unnormalized: (H, W) per image, (T,) per text's own
        tokens. What rankings and comparisons (faithfulness, sanity checks) read."""


def faithfulness(result: Explanation, i: int) -> dict | None:
    """Input i's curves and AUCs per metric, when the request asked for them."""
    if not result.faithfulness:
        return None
    return {
        metric: {"auc": float(v["auc"][i]), "random_auc": float(v["random_auc"][i]), "curve": v["curve"][i].tolist()}
        for metric, v in result.faithfulness.items()
    }
