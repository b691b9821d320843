"""Where `saliency-service explain` explains: here (the service's own core, in this process) or by a running
server through the Python client. Both give the client's `Explained`, so the command reads one kind of answer."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .client import Client, Explained, Progress
from .client.results import parse_explained
from .settings import Settings

Run = Callable[[str, Progress], Explained]  # (image path, progress) -> the answer


def open_backend(args: argparse.Namespace, request: dict[str, Any]):
    return remote(args, request) if args.url else local(args, request)


@contextmanager
def remote(args: argparse.Namespace, request: dict[str, Any]) -> Iterator[Run]:
    key = args.api_key or os.environ.get("SALIENCY_API_KEY")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO line per request would bury the bar and errors
    with Client(args.url, key) as client:
        yield lambda image, progress: client.explain(args.model, image, progress=progress, **request)


@contextmanager
def local(args: argparse.Namespace, request: dict[str, Any]) -> Iterator[Run]:
    # Imported here: torch and the models are not needed to talk to a server, and take seconds to import.
    from . import core
    from .api.responses import explain_response
    from .main import build_services
    from .schemas import ExplainSpec

    try:
        spec = ExplainSpec.model_validate(request)
    except ValidationError as exc:
        error = exc.errors()[0]
        sys.exit(f"error: {'.'.join(str(part) for part in error['loc']) or 'spec'}: {error['msg']}")
    services = build_services(Settings(**({"config": args.config} if args.config else {})))

    def run(image: str, progress: Progress) -> Explained:
        work = core.explain(
            services,
            args.model,
            "images",
            [read_image(image)],
            spec.method_specs(),
            target=spec.target,
            objective=spec.objective,
            output=spec.output,
            progress=progress,
        )
        # The v1 JSON, read as a server's answer is: one summary and one overlay for either way.
        return parse_explained(explain_response(loop.run(work), several=False).model_dump(mode="json"))

    try:
        with asyncio.Runner() as loop:
            yield run
    finally:
        services.runner.close()
        services.codecs.close()


def read_image(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        sys.exit(f"error: cannot read {path}: {exc.strerror or exc}")
