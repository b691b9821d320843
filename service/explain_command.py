"""`saliency-service explain IMAGE`: one explanation here, or through a running server following its progress
events, with a progress bar; the overlay PNG is written and a summary printed."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import ValidationError

from .settings import Settings

if TYPE_CHECKING:
    from .schemas import ExplainResponse, ExplainSpec

Progress = Callable[[int, int], None]


def explain(args: argparse.Namespace) -> None:
    """One image's explanation, here or (with --url) by a running server: the overlay PNG and a JSON summary."""
    spec = explain_spec(args)
    image = read_image(args.image)
    bar = ProgressBar(show=args.progress if args.progress is not None else sys.stderr.isatty())
    try:
        response = (explain_remote if args.url else explain_local)(args, image, spec, bar.report)
        bar.finish()
    finally:
        bar.close()
    result = response.results[0]
    try:
        Path(args.output).write_bytes(base64.b64decode(result.overlay_png or ""))
    except OSError as exc:
        sys.exit(f"error: cannot write {args.output}: {exc.strerror or exc}")
    summary = {
        "model": response.model,
        "method": response.method,
        "target": result.target.model_dump(),
        "predictions": [p.model_dump() for p in result.predictions],
        "overlay": args.output,
        "diagnostics": result.diagnostics,
    }
    print(json.dumps(summary, indent=2))


class ProgressBar:
    """A tqdm bar (in passes) on stderr, opened at the first report: after the model has loaded, and logged."""

    def __init__(self, show: bool) -> None:
        self.show = show
        self.bar: Any = None

    def report(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="pass", desc="explaining", file=sys.stderr, disable=not self.show)
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def finish(self) -> None:
        # The server sends progress at most every 100 ms, so its last report may come before the end.
        if self.bar is not None:
            self.report(self.bar.total, self.bar.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def explain_spec(args: argparse.Namespace) -> ExplainSpec:
    from .schemas import ExplainSpec, OutputOptions

    try:
        method = json.loads(args.method) if args.method.lstrip().startswith("{") else args.method
    except json.JSONDecodeError as exc:
        sys.exit(f"error: --method: not valid JSON: {exc}")
    try:
        # The target as the HTTP form reads it: "1" is class 1, "circle" a label, "predicted" the top class.
        fields = ExplainSpec.model_validate_strings({"target": args.target}).model_dump(include={"target"})
        return ExplainSpec(method=method, output=OutputOptions(overlay=True, colormap=args.colormap), **fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        sys.exit(f"error: {'.'.join(str(part) for part in error['loc']) or 'spec'}: {error['msg']}")


def read_image(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        sys.exit(f"error: cannot read {path}: {exc.strerror or exc}")


def explain_local(args: argparse.Namespace, image: bytes, spec: ExplainSpec, progress: Progress) -> ExplainResponse:
    from . import core
    from .api.responses import explain_response
    from .main import build_services
    from .schemas import ExplainResponse

    services = build_services(Settings(**({"config": args.config} if args.config else {})))
    work = core.explain(
        services,
        args.model,
        "images",
        [image],
        spec.method_specs(),
        target=spec.target,
        objective=spec.objective,
        output=spec.output,
        progress=progress,
    )
    try:
        answer = explain_response(asyncio.run(work), several=False)
    finally:
        services.runner.close()
        services.codecs.close()
    assert isinstance(answer, ExplainResponse)  # one method: the single-method response
    return answer


def explain_remote(args: argparse.Namespace, image: bytes, spec: ExplainSpec, progress: Progress) -> ExplainResponse:
    """The explain request to a running server, following its progress events."""
    import httpx

    from .schemas import ExplainResponse

    body = {"images": [base64.b64encode(image).decode()], **spec.model_dump(mode="json")}
    key = args.api_key or os.environ.get("SALIENCY_API_KEY")
    headers = {"Accept": "text/event-stream", **({"Authorization": f"Bearer {key}"} if key else {})}
    url = f"{args.url.rstrip('/')}/v1/models/{args.model}/explain"
    try:
        with httpx.stream("POST", url, json=body, headers=headers, timeout=httpx.Timeout(30, read=None)) as response:
            events = response.headers.get("content-type", "").startswith("text/event-stream")
            if response.status_code != 200 or not events:
                # An error the server met before its first progress event, or a proxy's answer.
                response.read()
                answer = json_or_none(response.content)
                if response.status_code == 200 and isinstance(answer, dict):
                    return ExplainResponse.model_validate(answer)
                failure(answer, response.status_code)
            for name, data in sse_events(response.iter_lines()):
                payload = json.loads(data)
                if name == "progress":
                    progress(payload["done"], payload["total"])
                elif name == "result":
                    return ExplainResponse.model_validate(payload)
                elif name == "error":
                    failure(payload, None)
    except httpx.HTTPError as exc:
        sys.exit(f"error: {url}: {str(exc) or type(exc).__name__}")
    sys.exit("error: the server closed the stream without a result")


def sse_events(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Server-sent events as (name, data): `field: value` lines up to a blank line; `:` starts a comment."""
    data: list[str]
    name, data = "", []
    for line in lines:
        if not line:
            if data:
                yield name or "message", "\n".join(data)
            name, data = "", []
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)


def json_or_none(content: bytes) -> object:
    try:
        return json.loads(content)
    except ValueError:
        return None


def failure(body: object, status: int | None) -> NoReturn:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        sys.exit(f"error: {error.get('code')}: {error.get('message')}")
    sys.exit(f"error: HTTP {status}")
