"""Where `saliency-service explain` and `audit` explain: here (the service's own core, in this process) or by a
running server through the Python client. Both give the client's `Explained` (`DetectionsExplained` for a
detector's boxes, `AnswersExplained` for a causal LM's answers), so the commands read one kind of answer."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from saliency_client import AnswersExplained, Client, DetectionsExplained, Explained, Progress
from saliency_client import ServiceError as ClientError
from saliency_client.language import parse_answers
from saliency_client.results import parse_explained, parse_explanation

from ..settings import Settings
from .errors import CommandError
from .language import answers_json

if TYPE_CHECKING:
    from .. import core


@dataclass(frozen=True)
class Backend:
    """`explain(inputs, field, progress)`: image paths (field "images") or texts ("texts") in one request;
    `model()`: the fields of GET /v1/models/{name} for args.model (its kind, input size and labels). Each call
    reads the request as it is then (the commands set a detector's target and output after model())."""

    explain: Callable[[Sequence[str], str, Progress | None], Explained]
    model: Callable[[], dict[str, Any]]
    # A detection model's images: per image, per box, its maps (the same request otherwise).
    explain_boxes: Callable[[Sequence[str], str, Progress | None], DetectionsExplained]
    # A causal LM's prompts (field "texts"): per prompt, its answer and per answer token the prompt's scores.
    # The request: language.answers_request's (the method, the target or `generate`).
    explain_answers: Callable[[Sequence[str], str, Progress | None], AnswersExplained]


def open_batches(args: argparse.Namespace, request: dict[str, Any]):
    return remote(args, request) if args.url else local(args, request)


@contextmanager
def remote(args: argparse.Namespace, request: dict[str, Any]) -> Iterator[Backend]:
    key = args.api_key or os.environ.get("SALIENCY_API_KEY")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO line per request would bury the bar and errors
    with Client(args.url, key) as client:

        def explain(inputs: Sequence[str], field: str, progress: Progress | None) -> Explained:
            if field == "texts":
                answer = client.explain(args.model, texts=list(inputs), progress=progress, **request)
            else:
                answer = client.explain(args.model, list(inputs), progress=progress, **request)
            return classifier_answer(answer, args.model)

        def model() -> dict[str, Any]:
            for entry in client.models():
                if entry.get("name") == args.model:
                    return entry
            raise ClientError("unknown_model", f"unknown model {args.model!r}", status=404)

        def explain_boxes(inputs: Sequence[str], field: str, progress: Progress | None) -> DetectionsExplained:
            answer = client.explain(args.model, list(inputs), progress=progress, **request)
            if not isinstance(answer, DetectionsExplained):
                raise CommandError(f"model {args.model!r} answered as a classifier, not with boxes")
            return answer

        def explain_answers(inputs: Sequence[str], field: str, progress: Progress | None) -> AnswersExplained:
            answer = client.explain(args.model, texts=list(inputs), progress=progress, **request)
            if not isinstance(answer, AnswersExplained):
                raise CommandError(f"model {args.model!r} answered with maps, not as a causal language model")
            return answer

        yield Backend(explain, model, explain_boxes, explain_answers)


@contextmanager
def local(args: argparse.Namespace, request: dict[str, Any]) -> Iterator[Backend]:
    """Explains in this process, by the core's own calls (no HTTP layer): the answer reads as a server's."""
    # Imported here: torch and the models are not needed to talk to a server, and take seconds to import.
    from .. import core
    from ..codecs.options import OutputOptions
    from ..core.catalog import describe

    try:
        output = OutputOptions.model_validate(request.get("output", {}))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in ("output", *error["loc"]))
        raise CommandError(f"{where}: {error['msg']}") from None
    services = core.build_services(Settings(**({"config": args.config} if args.config else {})))

    def explain(inputs: Sequence[str], field: str, progress: Progress | None) -> Explained:
        work = core.explain(
            services,
            args.model,
            field,
            [read_image(i) for i in inputs] if field == "images" else list(inputs),
            [request["method"]],
            target=request.get("target", "predicted"),
            output=output,
            progress=progress,
        )
        result = loop.run(work)
        if not isinstance(result, core.Explained):
            raise CommandError(DETECTORS.format(model=args.model))
        return parse_explained(answer(result))

    def explain_boxes(inputs: Sequence[str], field: str, progress: Progress | None) -> DetectionsExplained:
        work = core.explain(
            services,
            args.model,
            field,
            [read_image(i) for i in inputs],
            [request["method"]],
            target=request.get("target", "detections"),
            output=OutputOptions.model_validate(request.get("output", {})),  # as the request says now
            progress=progress,
        )
        result = loop.run(work)
        if isinstance(result, core.Explained):
            raise CommandError(f"model {args.model!r} is a classifier, not a detection model")
        parsed = parse_explanation(boxes_answer(result))
        assert isinstance(parsed, DetectionsExplained)
        return parsed

    def explain_answers(inputs: Sequence[str], field: str, progress: Progress | None) -> AnswersExplained:
        from ..core.causal import AnswersExplained as Answers
        from ..core.generation import GenerateOptions

        given = request.get("generate")
        work = core.explain(
            services,
            args.model,
            field,
            list(inputs),
            [request["method"]],
            target=request.get("target", "predicted"),
            output=output,
            progress=progress,
            generate=None if given is None else GenerateOptions.model_validate(given),
        )
        result = loop.run(work)
        if not isinstance(result, Answers):
            raise CommandError(f"model {args.model!r} is not a causal language model")
        return parse_answers(answers_json(result))

    def model() -> dict[str, Any]:
        services.pool.get(args.model)  # loads it (an unknown model raises), so that its labels are known
        return asdict(describe(services, args.model))

    try:
        with asyncio.Runner() as loop:
            yield Backend(explain, model, explain_boxes, explain_answers)
    finally:
        services.close()


DETECTORS = "model {model!r} is a detection model: its images are explained per box (explain_boxes)"


def classifier_answer(answer: Explained | DetectionsExplained | AnswersExplained, model: str) -> Explained:
    """A classifier's maps; a detector's boxes end the command in one line (they come by explain_boxes), as
    does a language model's answer (explain_answers)."""
    if isinstance(answer, AnswersExplained):
        raise CommandError(f"model {model!r} is a causal language model: explain its prompts (explain --prompt)")
    if not isinstance(answer, Explained):
        raise CommandError(DETECTORS.format(model=model))
    return answer


def answer(result: core.Explained) -> dict[str, Any]:
    """A one-method explanation as the JSON a server sends, so that both ways read one kind of answer."""
    return {
        "model": result.model,
        "method": result.methods[0],
        "objective": result.objective,
        "results": [
            {"predictions": [asdict(r) for r in top], "target": asdict(target), **maps[0]}
            for top, target, maps in zip(result.predictions, result.targets, result.maps, strict=True)
        ],
        "timing_ms": result.timing_ms,
    }


def boxes_answer(result: Any) -> dict[str, Any]:
    """A detector's explanation (core.detect.DetectionsExplained) as the JSON a server sends."""

    def entries(fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"method": m, **f} for m, f in zip(result.methods, fields, strict=True)]

    return {
        "model": result.model,
        "methods": result.methods,
        "results": [
            {
                "detections": [
                    {**asdict(d), "explanations": entries(fields)} for d, fields in zip(found, maps, strict=True)
                ],
                "overlay_png": combined,
            }
            for found, maps, combined in zip(result.detections, result.maps, result.combined, strict=True)
        ],
        "timing_ms": result.timing_ms,
    }


def read_image(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
