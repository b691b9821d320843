"""Errors a client can cause, each with its HTTP status.

Framework-free on purpose: the engine and the inference layer raise these, and the API turns them into
`{"error": {"code", "message", "field"}}` responses in one handler (see service.api.handlers).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class UnknownModel(NotFound):
    code = "unknown_model"


class UnknownMethod(NotFound):
    code = "unknown_method"


class InvalidInput(ServiceError):
    status, code = 422, "invalid_input"


class InvalidImage(ServiceError):
    status, code = 422, "invalid_image"


class InvalidTarget(ServiceError):
    status, code = 422, "invalid_target"


class InvalidParameter(ServiceError):
    status, code = 422, "invalid_parameter"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "unsupported_media_type"


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


class BodyTimeout(ServiceError):
    status, code = 408, "body_timeout"


class ModelUnavailable(ServiceError):
    status, code = 503, "model_unavailable"


class Overloaded(ServiceError):
    status, code = 503, "overloaded"


class ShuttingDown(ServiceError):
    status, code = 503, "shutting_down"


class DeadlineExceeded(ServiceError):
    status, code = 504, "deadline_exceeded"


@contextmanager
def within_field(inner: str, outer: str) -> Iterator[None]:
    """Errors raised inside name their field from the request's root: `method.steps` becomes
    `methods.2.steps` when the method is the third of a list. The one place field paths are prefixed."""
    try:
        yield
    except ServiceError as exc:
        if exc.field is not None and (exc.field == inner or exc.field.startswith(inner + ".")):
            exc.field = outer + exc.field.removeprefix(inner)
        raise
