"""Every error answer has the same shape: {"error": {"code", "message", "field"}}."""

from __future__ import annotations

import logging

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import ServiceError

log = logging.getLogger("service.api")


def error_response(status: int, code: str, message: str, field: str | None = None, headers=None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
    request.state.error_code = exc.code
    return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"] if p not in ("body", "path", "query"))
    request.state.error_code = "invalid_input"
    return error_response(422, "invalid_input", f"{where or 'request'}: {first['msg']}", where or None)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    request.state.error_code = code
    return error_response(exc.status_code, code, str(exc.detail), None, getattr(exc, "headers", None))


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    # A bug, not the client's fault: log it with the request id (also in the X-Request-ID header) that the
    # client can quote, and answer without internals. Called by service.api.observe, inside CORS.
    request_id = correlation_id.get() or "-"
    log.error("unhandled error, request id %s", request_id, exc_info=exc)
    request.state.error_code = "internal"
    return error_response(500, "internal", f"internal error (request id {request_id})")


def install(app: FastAPI) -> None:
    # Starlette types handlers as taking any Exception; each of these is registered for its own type.
    app.add_exception_handler(ServiceError, service_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]
    # Unexpected exceptions are answered by service.api.observe.RequestObserver: an `Exception` handler
    # here would run in ServerErrorMiddleware, outside CORS and the request-id middleware.
