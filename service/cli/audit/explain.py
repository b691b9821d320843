"""Explains the inputs in batches through a backend (here or a server). An input the service refuses on its
own (a file that is not an image, a text over the model's length) is skipped with the reason; any other error
ends the audit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from saliency_client import DetectionsExplained, DetectionsResult, Explained, ExplainResult
from saliency_client import ServiceError as ClientError

from ...errors import ServiceError
from ..backends import Backend
from ..explain import one_line
from .inputs import Item


@dataclass(frozen=True)
class Outcome:
    item: Item
    result: ExplainResult | DetectionsResult | None  # None: skipped
    skipped: str | None = None  # why


class Batches:
    """`run(items)` yields one Outcome per item, in order; `method` is the service's echo of the method."""

    def __init__(
        self, backend: Backend, field: str, batch_size: int, done: Callable[[int], None], boxes: bool = False
    ) -> None:
        self.backend, self.field, self.batch_size, self.done = backend, field, batch_size, done
        # boxes: a detection model's images, each result a DetectionsResult (per box, its maps)
        self.call: Callable[..., Explained | DetectionsExplained] = backend.explain_boxes if boxes else backend.explain
        self.method: dict[str, Any] | None = None

    def run(self, items: list[Item]) -> Iterator[Outcome]:
        for start in range(0, len(items), self.batch_size):
            yield from self.batch(items[start : start + self.batch_size])
            self.done(min(start + self.batch_size, len(items)))

    def batch(self, pending: list[Item]) -> Iterator[Outcome]:
        while pending:
            try:
                answer = self.call([item.source for item in pending], self.field, None)
            except (ClientError, ServiceError) as exc:
                bad = refused_input(exc.field, self.field, len(pending))
                if bad is None:
                    raise
                yield Outcome(pending[bad], None, one_line(exc))
                pending = pending[:bad] + pending[bad + 1 :]  # and the others again, without it
                continue
            self.method = answer.method
            results: list[ExplainResult | DetectionsResult] = list(answer.results)
            for item, result in zip(pending, results, strict=True):
                yield Outcome(item, result)
            return


def refused_input(field: str | None, inputs: str, count: int) -> int | None:
    """The index of the input an error names (`images.3`), if it names one of this request's inputs."""
    head, _, index = (field or "").partition(".")
    if head != inputs or not index.isdigit() or int(index) >= count:
        return None
    return int(index)
