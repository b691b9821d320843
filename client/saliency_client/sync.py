"""The blocking client."""

from __future__ import annotations

from collections.abc import Callable
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


class Client(
    BaseClient[
        httpx.BaseTransport,
        list[dict[str, Any]],
        Predicted | Detected | Generated,
        Explained | DetectionsExplained | AnswersExplained,
        Checked,
    ]
):
    """A saliency-service at `base_url` (e.g. http://127.0.0.1:8000), with an API key if the server has keys.

    Every failure raises `ServiceError`. Use it as a context manager, or call close().
    """

    _http_type = httpx.Client
    _http: httpx.Client

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, request: Callable[[], Request], parse: Callable[[Any, str | None], T]) -> T:
        call = request()
        try:
            answer = self._exchange(call)
        except httpx.HTTPError as exc:
            raise from_transport(exc, self.base_url) from None
        return parse(*answer)

    def _exchange(self, call: Request) -> tuple[Any, str | None]:
        """(the JSON body, the request id) of the answer; a streamed one's progress goes to its callback."""
        if call.body is None:
            return calls.json_answer(self._http.get(call.path))
        if call.progress is None:
            return calls.json_answer(self._http.post(call.path, json=call.body, headers=call.headers))
        with self._http.stream("POST", call.path, json=call.body, headers=call.headers) as response:
            if not calls.is_event_stream(response):
                response.read()  # an error before the first event comes as plain JSON, with its status
                return calls.json_answer(response)
            reader = calls.EventReader(call.progress, response.headers.get("x-request-id"))
            for event in EventSource(response).iter_sse():
                if (answer := reader.take(event)) is not None:
                    return answer, reader.request_id
            raise reader.incomplete()
