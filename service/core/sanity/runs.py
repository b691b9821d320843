"""Sets of maps of the same inputs, on the served model, its randomized copy or the reference model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from torch import Tensor, nn

from ...codecs import Batch
from ...engine.runner import Progress, Reservation
from ...models import LoadedModel
from .. import plans
from ..services import Services

if TYPE_CHECKING:
    from .check import Work


@dataclass
class MapSet:
    logits: Tensor
    targets: Tensor
    per_method: list[list[np.ndarray]]  # per method, per input


class Runs:
    """Sets of maps of the same inputs on a model (or a copy of it), with progress across all sets; every set's
    rows were admitted with the request (`seat`)."""

    def __init__(
        self, services: Services, work: Work, batch: Batch, seat: Reservation, progress: Progress | None
    ) -> None:
        self.services, self.work, self.batch, self.seat, self.progress = services, work, batch, seat, progress
        self.done = 0
        self.total = work.total_rows

    async def maps(self, loaded: LoadedModel, module: nn.Module | None, targets: Tensor) -> MapSet:
        offset = self.done

        def report(done: int, _total: int) -> None:
            if self.progress is not None:
                self.progress(offset + done, self.total)

        runner, methods = self.services.runner, self.work.methods
        results = await plans.explain(
            runner, loaded, methods, self.batch.x, targets, "logit", report, module=module, reservation=self.seat
        )
        self.done = offset + self.work.rows.total
        per_method = [
            await self.services.codecs.run(self.work.codec.scores, self.batch, result, explainer)
            for result, (explainer, _) in zip(results, methods, strict=True)
        ]
        return MapSet(results[0].logits.float(), results[0].targets, per_method)
