"""The one exception the client raises: the server's error (code, message, field, request id), a transport
failure, or an input the client cannot send."""

from __future__ import annotations

import json

import httpx

# The HTTP status of each error code the server sends, for errors that arrive as stream events (which have
# no status of their own). Written out: the client does not install the server. A server-side test
# (tests/client/test_errors.py) checks it against the server's exception classes.
STATUS_BY_CODE: dict[str, int] = {
    "bad_request": 400,
    "unauthorized": 401,
    "not_found": 404,
    "unknown_model": 404,
    "unknown_method": 404,
    "body_timeout": 408,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "invalid_input": 422,
    "invalid_image": 422,
    "invalid_target": 422,
    "invalid_parameter": 422,
    "internal": 500,
    "model_unavailable": 503,
    "overloaded": 503,
    "shutting_down": 503,
    "deadline_exceeded": 504,
}


class ServiceError(Exception):
    """A failed call. `code` is the server's error code (`unknown_model`, `invalid_parameter`, ...) or, for
    failures before an answer, `connection_error`, `timeout`, `transport_error`, `invalid_response` or
    `invalid_input` (an input the client could not read); `status` is the HTTP status, None without one."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        field: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = [f"HTTP {self.status}"] if self.status is not None else []
        where += [f"field {self.field}"] if self.field else []
        where += [f"request id {self.request_id}"] if self.request_id else []
        return f"{self.code}: {self.message}" + (f" ({', '.join(where)})" if where else "")


def from_body(body: object, status: int | None, request_id: str | None) -> ServiceError:
    """The error of a JSON error body `{"error": {"code", "message", "field"}}` (or of anything else)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        code = error["code"]
        field = error.get("field")
        return ServiceError(
            code,
            str(error.get("message", "")),
            status=status if status is not None else STATUS_BY_CODE.get(code),
            field=field if isinstance(field, str) else None,
            request_id=request_id,
        )
    code = f"http_{status}" if status is not None else "invalid_response"
    return ServiceError(code, "an error without the service's error body", status=status, request_id=request_id)


def from_response(response: httpx.Response) -> ServiceError:
    """The error a non-2xx answer carries; a proxy's page (HTML, empty) keeps its status and first words."""
    request_id = response.headers.get("x-request-id")
    try:
        error = from_body(json.loads(response.content), response.status_code, request_id)
    except ValueError:
        text = " ".join(response.text.split())[:200] or response.reason_phrase
        error = ServiceError(f"http_{response.status_code}", text, status=response.status_code, request_id=request_id)
    error.request_id = request_id
    error.retry_after = retry_after(response.headers.get("retry-after"))
    return error


def retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the service never sends one


def from_transport(exc: httpx.HTTPError, base_url: str) -> ServiceError:
    """A request that got no (complete) answer."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return ServiceError("connection_error", f"cannot connect to {base_url}: {detail}")
    if isinstance(exc, httpx.TimeoutException):
        return ServiceError("timeout", f"{base_url}: {type(exc).__name__}: {detail}")
    return ServiceError("transport_error", f"{base_url}: {detail}")
