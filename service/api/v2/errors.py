"""v2 errors: `{"error": "<message>"}`, as the protocol has them (and as tritonclient reads them).

The protocol's status for a failed request is "typically 400": client errors that v1 answers 422 are 400
here; 401, 404 (unknown model), 408, 413, 415, 503 (with Retry-After) and 504 keep their meaning. A route
class turns every error of a v2 route into this shape, its dependencies' (the API key) included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from ...errors import ServiceError, UnknownMethod
from .schemas import ErrorV2

log = logging.getLogger("service.api")

KEPT = {401, 404, 408, 413, 415, 503, 504}
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorV2, "description": description}
    for status, description in {
        400: "A malformed request, tensor or parameter.",
        401: "Missing or unknown API key.",
        404: "Unknown model.",
    }.items()
}
INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    **RESPONSES,
    **{status: {"model": ErrorV2} for status in (408, 413, 415, 503, 504)},
}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def from_service_error(request: Request, exc: ServiceError) -> JSONResponse:
    request.state.error_code = exc.code
    message = f"{exc.field}: {exc.message}" if exc.field and not exc.message.startswith(exc.field) else exc.message
    # 404 is for a path that names nothing (an unknown model); a method is a parameter.
    kept = exc.status in KEPT and not isinstance(exc, UnknownMethod)
    return error(exc.status if kept else 400, message, exc.headers)


class V2Route(APIRoute):
    """Answers the route's errors, and its dependencies', in the v2 shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as exc:
                return from_service_error(request, exc)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
                request.state.error_code = "invalid_input"
                return error(400, f"{'.'.join(map(str, first['loc']))}: {first['msg']}")
            except HTTPException as exc:
                request.state.error_code = "http_error"
                return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))
            except ClientDisconnect:
                raise  # nobody to answer: counted as 499 by the observer
            except Exception as exc:
                # A bug: logged with the request id, answered without internals (as v1's 500s).
                request_id = correlation_id.get() or "-"
                log.error("unhandled error, request id %s", request_id, exc_info=exc)
                request.state.error_code = "internal"
                return error(500, f"internal error (request id {request_id})")

        return handle
