"""Where `saliency-service explain` and `audit` explain: here (the service's own core, in this process) or by a
running server through the Python client. Both give the client's `Explained`, so the commands read one kind of
answer."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .client import Client, Explained, Progress
from .client import ServiceError as ClientError
from .client.results import parse_explained
from .settings import Settings

Run = Callable[[str, Progress], Explained]  # (image path, progress) -> the answer


@dataclass(frozen=True)
class Backend:
    """`explain(inputs, field, progress)`: image paths (field "images") or texts ("texts") in one request;
    `model()`: the fields of GET /v1/models/{name} for args.model (its kind, input size and labels)."""

    explain: Callable[[Sequence[str], str, Progress | None], Explained]
    model: Callable[[], dict[str, Any]]


@contextmanager
def open_backend(args: argparse.Namespace, request: dict[str, Any]) -> Iterator[Run]:
    with open_batches(args, request) as backend:
        yield lambda image, progress: backend.explain([image], "images", progress)


def open_batches(args: argparse.Namespace, request: dict[str, Any]):
    return remote(args, request) if args.url else local(args, request)


@contextmanager
def remote(args: argparse.Namespace, request: dict[str, Any]) -> Iterator[Backend]:
    key = args.api_key or os.environ.get("SALIENCY_API_KEY")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO line per request would bury the bar and errors
    with Client(args.url, key) as client:

        def explain(inputs: Sequence[str], field: str, progress: Progress | None) -> Explained:
            if field == "texts":
                return client.explain(args.model, texts=list(inputs), progress=progress, **request)
            return client.explain(args.model, list(inputs), progress=progress, **request)

        def model() -> dict[str, Any]:
            for entry in client.models():
                if entry.get("name") == args.model:
                    return entry
            raise ClientError("unknown_model", f"unknown model {args.model!r}", status=404)

        yield Backend(explain, model)


@contextmanager
def local(args: argparse.Namespace, request: dict[str, Any]) -> Iterator[Backend]:
    # Imported here: torch and the models are not needed to talk to a server, and take seconds to import.
    from . import core
    from .api.models import model_info
    from .api.responses import explain_response
    from .main import build_services
    from .schemas import ExplainSpec

    try:
        spec = ExplainSpec.model_validate(request)
    except ValidationError as exc:
        error = exc.errors()[0]
        sys.exit(f"error: {'.'.join(str(part) for part in error['loc']) or 'spec'}: {error['msg']}")
    services = build_services(Settings(**({"config": args.config} if args.config else {})))

    def explain(inputs: Sequence[str], field: str, progress: Progress | None) -> Explained:
        work = core.explain(
            services,
            args.model,
            field,
            [read_image(i) for i in inputs] if field == "images" else list(inputs),
            spec.method_specs(),
            target=spec.target,
            objective=spec.objective,
            output=spec.output,
            progress=progress,
        )
        # The v1 JSON, read as a server's answer is: one summary and one overlay for either way.
        return parse_explained(explain_response(loop.run(work), several=False).model_dump(mode="json"))

    def model() -> dict[str, Any]:
        services.pool.get(args.model)  # loads it (an unknown model raises), so that its labels are known
        return model_info(services, args.model).model_dump(mode="json")

    try:
        with asyncio.Runner() as loop:
            yield Backend(explain, model)
    finally:
        services.runner.close()
        services.codecs.close()


def read_image(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        sys.exit(f"error: cannot read {path}: {exc.strerror or exc}")
