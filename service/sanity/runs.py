"""Sets of maps of the same inputs, on the served model, its randomized copy or the reference model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from torch import Tensor, nn

from .. import core
from ..codecs import Batch
from ..models import LoadedModel
from ..runner import Progress

if TYPE_CHECKING:
    from .check import Work


@dataclass
class MapSet:
    logits: Tensor
    targets: Tensor
    per_method: list[list[np.ndarray]]  # per method, per input


class Runs:
    """Sets of maps of the same inputs on a model (or a copy of it), with progress across all sets."""

    def __init__(self, services: core.Services, work: Work, batch: Batch, progress: Progress | None):
        self.services, self.work, self.batch, self.progress = services, work, batch, progress
        self.done = 0
        self.total = work.rows * (1 + len(work.steps))

    async def maps(self, loaded: LoadedModel, module: nn.Module | None, targets: Tensor) -> MapSet:
        offset = self.done

        def report(done: int, _total: int) -> None:
            if self.progress is not None:
                self.progress(offset + done, self.total)

        results = await self.services.runner.explain(
            loaded, self.work.methods, self.batch.x, targets, "logit", report, module=module
        )
        self.done = offset + self.work.rows
        per_method = [
            self.work.codec.scores(self.batch, result, explainer)
            for result, (explainer, _) in zip(results, self.work.methods, strict=True)
        ]
        return MapSet(results[0].logits.float(), results[0].targets, per_method)
