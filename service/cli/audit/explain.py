"""Explains the inputs in batches through a backend (here or a server). An input the service refuses on its
own (a file that is not an image, a text over the model's length, a prompt too long for its answer) is
skipped with the reason; any other error ends the audit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from saliency_client import Answered, AnswersExplained, DetectionsExplained, DetectionsResult, Explained, ExplainResult
from saliency_client import ServiceError as ClientError

from ...errors import ServiceError
from ..backends import Backend
from ..explain import one_line
from .inputs import Item


@dataclass(frozen=True)
class Outcome:
    item: Item
    result: ExplainResult | DetectionsResult | Answered | None  # None: skipped
    skipped: str | None = None  # why


class Batches:
    """`run(items)` yields one Outcome per item, in order; `method` is the service's echo of the method."""

    def __init__(
        self,
        backend: Backend,
        field: str,
        batch_size: int,
        done: Callable[[int], None],
        of: Literal["maps", "boxes", "answers"] = "maps",
    ) -> None:
        self.backend, self.field, self.batch_size, self.done = backend, field, batch_size, done
        # boxes: a detection model's images, each result a DetectionsResult (per box, its maps); answers: a causal
        # LM's prompts, each result an Answered (its answer, per answer token the prompt's scores)
        calls: dict[str, Callable[..., Explained | DetectionsExplained | AnswersExplained]] = {
            "maps": backend.explain,
            "boxes": backend.explain_boxes,
            "answers": backend.explain_answers,
        }
        self.call = calls[of]
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
                if bad is None and too_long(exc):  # the longest prompt with its answer: the error names none
                    if len(pending) > 1:
                        for item in pending:
                            yield from self.batch([item])
                        return
                    bad = 0
                if bad is None:
                    raise
                yield Outcome(pending[bad], None, one_line(exc))
                pending = pending[:bad] + pending[bad + 1 :]  # and the others again, without it
                continue
            self.method = answer.methods[0] if isinstance(answer, AnswersExplained) else answer.method
            results: list[ExplainResult | DetectionsResult | Answered] = list(answer.results)
            for item, result in zip(pending, results, strict=True):
                yield Outcome(item, result)
            return


def refused_input(field: str | None, inputs: str, count: int) -> int | None:
    """The index of the input an error names (`images.3`), if it names one of this request's inputs."""
    head, _, index = (field or "").partition(".")
    if head != inputs or not index.isdigit() or int(index) >= count:
        return None
    return int(index)


def too_long(exc: ClientError | ServiceError) -> bool:
    """A causal LM's 413 for the request's longest prompt with its answer (max_new_tokens, or the target)."""
    return exc.status == 413 and exc.field in ("generate.max_new_tokens", "target")
