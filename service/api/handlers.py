"""Every error answer has the same shape: {"error": {"code", "message", "field"}}."""

from __future__ import annotations

import logging
import uuid

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
    # A bug, not the client's fault: log it with an id the client can quote, answer without internals.
    request_id = uuid.uuid4().hex[:12]
    log.exception("unhandled error, request id %s", request_id)
    request.state.error_code = "internal"
    return error_response(500, "internal", f"internal error (request id {request_id})")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
