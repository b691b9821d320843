"""The asyncio client: the same calls as Client, awaited."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
from httpx_sse import EventSource

from . import calls
from .base import BaseClient
from .calls import Request
from .errors import from_transport
from .language import AnswersExplained, Generated
from .results import Checked, Detected, DetectionsExplained, Explained, Predicted

T = TypeVar("T")
Awaited = Coroutine[Any, Any, T]


class AsyncClient(
    BaseClient[
        httpx.AsyncBaseTransport,
        Awaited[list[dict[str, Any]]],
        Awaited[Predicted | Detected | Generated],
        Awaited[Explained | DetectionsExplained | AnswersExplained],
        Awaited[Checked],
    ]
):
    """A saliency-service at `base_url` (e.g. http://127.0.0.1:8000), with an API key if the server has keys.

    Every failure raises `ServiceError`. Use it as an async context manager, or await aclose().
    """

    _http_type = httpx.AsyncClient
    _http: httpx.AsyncClient

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, request: Callable[[], Request], parse: Callable[[Any, str | None], T]) -> T:
        call = request()
        try:
            answer = await self._exchange(call)
        except httpx.HTTPError as exc:
            raise from_transport(exc, self.base_url) from None
        return parse(*answer)

    async def _exchange(self, call: Request) -> tuple[Any, str | None]:
        """(the JSON body, the request id) of the answer; a streamed one's progress goes to its callback."""
        if call.body is None:
            return calls.json_answer(await self._http.get(call.path))
        if call.progress is None:
            return calls.json_answer(await self._http.post(call.path, json=call.body, headers=call.headers))
        async with self._http.stream("POST", call.path, json=call.body, headers=call.headers) as response:
            if not calls.is_event_stream(response):
                await response.aread()  # an error before the first event comes as plain JSON, with its status
                return calls.json_answer(response)
            reader = calls.EventReader(call.progress, response.headers.get("x-request-id"))
            async for event in EventSource(response).aiter_sse():
                if (answer := reader.take(event)) is not None:
                    return answer, reader.request_id
            raise reader.incomplete()
