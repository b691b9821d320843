"""What the sync and the async client share: request bodies and headers, and reading answers and the
progress event stream. Only the I/O differs between the two clients."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict
from urllib.parse import quote

import httpx
from httpx_sse import ServerSentEvent

from . import __version__
from .convert import ImageInput, as_list, image_list
from .errors import ServiceError, from_body, from_response

Progress = Callable[[int, int], None]
"""progress(done, total): model passes done of the request's total, increasing, ending at total."""

# Explanations take seconds to minutes and streamed ones send nothing between events: the read timeout is long.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, read=300.0)
MethodSpec = str | Mapping[str, Any]


class OutputOptions(TypedDict, total=False):
    """`output` of an explain request (see the README); every key is optional."""

    saliency: Literal["float32", "float16", "uint8", "none"]
    reduce: Literal["max_abs", "sum_abs", "sum", "l2", "none"]
    normalize: Literal["minmax", "percentile", "none"]
    size: Literal["input", "original"]
    heatmap: bool
    overlay: bool
    colormap: str
    alpha: float
    html: bool


class EvaluateOptions(TypedDict, total=False):
    """`evaluate` of an explain request: faithfulness curves of each map (image models)."""

    metrics: list[Literal["deletion", "insertion"]]
    steps: int
    seed: int


def model_path(model: str, action: str) -> str:
    return f"/v1/models/{quote(model, safe='')}/{action}"


def client_headers(api_key: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return {"User-Agent": f"saliency-service-client/{__version__}", **auth, **(extra or {})}


@dataclass(frozen=True)
class Request:
    """One call: a GET without a body, else a JSON POST, whose answer streams progress events when `progress`
    is given."""

    path: str
    body: dict[str, Any] | None = None
    progress: Progress | None = None
    request_id: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {
            **({"X-Request-ID": self.request_id} if self.request_id else {}),
            **({"Accept": "text/event-stream"} if self.progress is not None else {}),
        }


def inputs_body(images: ImageInput | Sequence[ImageInput] | None, texts: str | Sequence[str] | None) -> dict:
    if (images is None) == (texts is None):
        raise ServiceError("invalid_input", "give either images (image models) or texts (text models)", field="images")
    if texts is not None:
        return {"texts": as_list(texts, (str,))}
    return {"images": image_list(images)}  # type: ignore[arg-type]  # not None: checked above


def predict_body(
    images: ImageInput | Sequence[ImageInput] | None,
    texts: str | Sequence[str] | None,
    top_k: int,
    timeout_ms: int | None,
) -> dict[str, Any]:
    body = {**inputs_body(images, texts), "top_k": top_k}
    return body if timeout_ms is None else {**body, "timeout_ms": timeout_ms}


def explain_body(
    images: ImageInput | Sequence[ImageInput] | None, texts: str | Sequence[str] | None, **spec: Any
) -> dict[str, Any]:
    """The JSON body; None leaves a field to the server's default."""
    method, methods = spec.pop("method"), spec.pop("methods")
    if method is not None:
        spec["method"] = method if isinstance(method, str) else dict(method)
    if methods is not None:
        spec["methods"] = [m if isinstance(m, str) else dict(m) for m in methods]
    return {**inputs_body(images, texts), **{key: value for key, value in spec.items() if value is not None}}


def sanity_body(
    images: ImageInput | Sequence[ImageInput] | None,
    texts: str | Sequence[str] | None,
    methods: Sequence[MethodSpec],
    **spec: Any,
) -> dict[str, Any]:
    """The JSON body of a sanity call; None leaves a field to the server's default."""
    chosen = [m if isinstance(m, str) else dict(m) for m in methods]
    given = {key: value for key, value in spec.items() if value is not None}
    return {**inputs_body(images, texts), "methods": chosen, **given}


def json_answer(response: httpx.Response) -> tuple[Any, str | None]:
    """(the JSON body, the request id) of a successful answer; else the ServiceError it carries."""
    request_id = response.headers.get("x-request-id")
    if not response.is_success:
        raise from_response(response)
    try:
        return response.json(), request_id
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        message = f"HTTP {response.status_code} with a body that is not JSON ({kind})"
        raise ServiceError("invalid_response", message, status=response.status_code, request_id=request_id) from None


def is_event_stream(response: httpx.Response) -> bool:
    return response.is_success and response.headers.get("content-type", "").startswith("text/event-stream")


class EventReader:
    """The events of a streamed explain request: `progress` to the callback, then `result` (or `error`)."""

    def __init__(self, progress: Progress, request_id: str | None) -> None:
        self.progress = progress
        self.request_id = request_id
        self.done = -1
        self.total: int | None = None

    def take(self, event: ServerSentEvent) -> Any | None:
        """The result's JSON body once it arrives, else None; an `error` event raises its ServiceError."""
        if event.event not in ("progress", "result", "error"):
            return None  # other events (none today) are ignored, as the SSE format says
        try:
            data = event.json()
            if event.event == "progress":
                self.report(int(data["done"]), int(data["total"]))
                return None
        except (ValueError, KeyError, TypeError):
            message = f"a {event.event} event that is not the service's JSON"
            raise ServiceError("invalid_response", message, request_id=self.request_id) from None
        if event.event == "error":
            raise from_body(data, None, self.request_id)
        # The server sends progress at most every 100 ms, so its last report may come before the end.
        if self.total is not None and self.done < self.total:
            self.progress(self.total, self.total)
        return data

    def report(self, done: int, total: int) -> None:
        if done > self.done or total != self.total:
            self.done, self.total = done, total
            self.progress(done, total)

    def incomplete(self) -> ServiceError:
        message = "the event stream ended without a result"
        return ServiceError("transport_error", message, request_id=self.request_id)
