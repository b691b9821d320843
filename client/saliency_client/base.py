"""The calls of both clients, written once. Each builds its Request and hands it to the client's `_send`, which
does the I/O: Client returns the answer, AsyncClient a coroutine of it. `_send` builds the request itself, so
that an AsyncClient call, like any coroutine, neither reads its inputs nor fails before it is awaited."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import httpx

from . import calls
from .calls import DEFAULT_TIMEOUT, EvaluateOptions, MethodSpec, OutputOptions, Progress, Request
from .convert import ImageInput
from .language import GenerateOptions
from .results import parse_checked, parse_explanation, parse_prediction

# What each client's calls take and return: Client the answers, AsyncClient coroutines of them.
TransportT = TypeVar("TransportT")
ListedT = TypeVar("ListedT")
PredictedT = TypeVar("PredictedT")
ExplainedT = TypeVar("ExplainedT")
CheckedT = TypeVar("CheckedT")


class BaseClient(Generic[TransportT, ListedT, PredictedT, ExplainedT, CheckedT]):
    _http_type: Callable[..., Any]  # httpx.Client or httpx.AsyncClient

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        transport: TransportT | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = self._http_type(
            base_url=self.base_url, headers=calls.client_headers(api_key, headers), timeout=timeout, transport=transport
        )

    def models(self) -> ListedT:
        """GET /v1/models: each model's kind, input size, classes, state and CAM layers."""
        return self._send(lambda: Request("/v1/models"), body_only)

    def methods(self) -> ListedT:
        """GET /v1/methods: each method's description, capabilities and parameter schemas."""
        return self._send(lambda: Request("/v1/methods"), body_only)

    def predict(
        self,
        model: str,
        images: ImageInput | Sequence[ImageInput] | None = None,
        *,
        texts: str | Sequence[str] | None = None,
        top_k: int = 5,
        generate: GenerateOptions | None = None,
        timeout_ms: int | None = None,
        request_id: str | None = None,
    ) -> PredictedT:
        """Top-k predictions for one image or text, or a list of them (paths, bytes, PIL images, uint8 arrays);
        a detection model's boxes (`Detected`); a causal language model's continuations (`Generated`, how:
        `generate`)."""

        def request() -> Request:
            body = calls.predict_body(images, texts, top_k, timeout_ms)
            if generate is not None:
                body["generate"] = dict(generate)
            return Request(calls.model_path(model, "predict"), body, request_id=request_id)

        return self._send(request, parse_prediction)

    def explain(
        self,
        model: str,
        images: ImageInput | Sequence[ImageInput] | None = None,
        *,
        texts: str | Sequence[str] | None = None,
        method: MethodSpec | None = None,
        methods: Sequence[MethodSpec] | None = None,
        target: int | str | Sequence[int | str] | Sequence[Mapping[str, Any]] = "predicted",
        objective: str = "logit",
        top_k: int = 5,
        output: OutputOptions | None = None,
        evaluate: EvaluateOptions | None = None,
        generate: GenerateOptions | None = None,
        include_generated: bool | None = None,
        timeout_ms: int | None = None,
        progress: Progress | None = None,
        request_id: str | None = None,
    ) -> ExplainedT:
        """Predictions and maps for one input or a list. `method` is a name or {"name": ..., **parameters}
        ("gradient" when neither it nor `methods` is given); `progress(done, total)` follows the server's
        progress events. A detection model answers `DetectionsExplained` (a map per box and method); its
        `target` is "detections" or boxes, [{"box": [x0, y0, x1, y1], "label": ...}, ...]. A causal language
        model answers `AnswersExplained` (per answer token a row of prompt-token scores): its `target` is the
        continuation to explain, or leave it out and the model answers (`generate`)."""

        def request() -> Request:
            body = calls.explain_body(
                images, texts, method=method, methods=methods, target=target, objective=objective, top_k=top_k,
                output=output, evaluate=evaluate, timeout_ms=timeout_ms,
                generate=None if generate is None else dict(generate), include_generated=include_generated,
            )  # fmt: skip
            return Request(calls.model_path(model, "explain"), body, progress, request_id)

        return self._send(request, parse_explanation)

    def sanity(
        self,
        model: str,
        images: ImageInput | Sequence[ImageInput] | None = None,
        *,
        texts: str | Sequence[str] | None = None,
        methods: Sequence[MethodSpec],
        test: str = "model_randomization",
        reference_model: str | None = None,
        target: int | str | Sequence[int | str] = "predicted",
        seed: int = 0,
        timeout_ms: int | None = None,
        progress: Progress | None = None,
        request_id: str | None = None,
    ) -> CheckedT:
        """Sanity checks of `methods` on these inputs (Adebayo et al. 2018): `model_randomization` (a randomized
        copy of the model, block by block) or `data_randomization` against `reference_model`."""

        def request() -> Request:
            body = calls.sanity_body(
                images, texts, methods=methods, test=test, reference_model=reference_model, target=target,
                seed=seed, timeout_ms=timeout_ms,
            )  # fmt: skip
            return Request(calls.model_path(model, "sanity"), body, progress, request_id)

        return self._send(request, parse_checked)

    def _send(self, request: Callable[[], Request], parse: Callable[[Any, str | None], Any]) -> Any:
        """parse(JSON body, request id) of the answer to request(): the I/O, each client's own."""
        raise NotImplementedError


def body_only(body: Any, request_id: str | None) -> Any:
    return body
