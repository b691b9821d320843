"""The asyncio client: the same calls as Client, awaited."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from httpx_sse import EventSource

from . import calls
from .calls import DEFAULT_TIMEOUT, EvaluateOptions, MethodSpec, OutputOptions, Progress
from .convert import ImageInput
from .errors import from_transport
from .results import Explained, Predicted, parse_explained, parse_predicted


class AsyncClient:
    """A saliency-service at `base_url` (e.g. http://127.0.0.1:8000), with an API key if the server has keys.

    Every failure raises `ServiceError`. Use it as an async context manager, or await aclose().
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=calls.client_headers(api_key, headers), timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def models(self) -> list[dict[str, Any]]:
        """GET /v1/models: each model's kind, input size, classes, state and CAM layers."""
        return await self._get("/v1/models")

    async def methods(self) -> list[dict[str, Any]]:
        """GET /v1/methods: each method's description, capabilities and parameter schemas."""
        return await self._get("/v1/methods")

    async def predict(
        self,
        model: str,
        images: ImageInput | Sequence[ImageInput] | None = None,
        *,
        texts: str | Sequence[str] | None = None,
        top_k: int = 5,
        timeout_ms: int | None = None,
        request_id: str | None = None,
    ) -> Predicted:
        """Top-k predictions for one image or text, or a list of them (paths, bytes, PIL images, uint8 arrays)."""
        body = {**calls.inputs_body(images, texts), "top_k": top_k}
        if timeout_ms is not None:
            body["timeout_ms"] = timeout_ms
        return parse_predicted(*await self._post(calls.model_path(model, "predict"), body, None, request_id))

    async def explain(
        self,
        model: str,
        images: ImageInput | Sequence[ImageInput] | None = None,
        *,
        texts: str | Sequence[str] | None = None,
        method: MethodSpec | None = None,
        methods: Sequence[MethodSpec] | None = None,
        target: int | str | Sequence[int | str] = "predicted",
        objective: str = "logit",
        top_k: int = 5,
        output: OutputOptions | None = None,
        evaluate: EvaluateOptions | None = None,
        timeout_ms: int | None = None,
        progress: Progress | None = None,
        request_id: str | None = None,
    ) -> Explained:
        """Predictions and maps for one input or a list. `method` is a name or {"name": ..., **parameters}
        ("gradient" when neither it nor `methods` is given); `progress(done, total)` follows the server's
        progress events."""
        body = calls.explain_body(
            images, texts, method=method, methods=methods, target=target, objective=objective, top_k=top_k,
            output=output, evaluate=evaluate, timeout_ms=timeout_ms,
        )  # fmt: skip
        return parse_explained(*await self._post(calls.model_path(model, "explain"), body, progress, request_id))

    async def _get(self, path: str) -> Any:
        try:
            return calls.json_answer(await self._http.get(path))[0]
        except httpx.HTTPError as exc:
            raise from_transport(exc, self.base_url) from None

    async def _post(
        self, path: str, body: dict[str, Any], progress: Progress | None, request_id: str | None
    ) -> tuple[Any, str | None]:
        headers = calls.call_headers(request_id, stream=progress is not None)
        try:
            if progress is None:
                return calls.json_answer(await self._http.post(path, json=body, headers=headers))
            async with self._http.stream("POST", path, json=body, headers=headers) as response:
                if not calls.is_event_stream(response):
                    await response.aread()  # an error before the first event comes as plain JSON, with its status
                    return calls.json_answer(response)
                reader = calls.EventReader(progress, response.headers.get("x-request-id"))
                async for event in EventSource(response).aiter_sse():
                    if (answer := reader.take(event)) is not None:
                        return answer, reader.request_id
                raise reader.incomplete()
        except httpx.HTTPError as exc:
            raise from_transport(exc, self.base_url) from None
