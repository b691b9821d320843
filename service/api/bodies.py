"""Reading request bodies: JSON or multipart/form-data, within the size limits."""

from __future__ import annotations

import asyncio
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.types import Message

from ..errors import BodyTimeout, InvalidInput, PayloadTooLarge, UnsupportedMediaType
from ..schemas import Inputs
from ..settings import Settings

M = TypeVar("M", bound=Inputs)
B = TypeVar("B", bound=BaseModel)


def validation_error(exc: ValidationError, whole: str | None = None) -> InvalidInput:
    """The first error, at its field; `whole` names the part an error about the whole document is in."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or whole
    return InvalidInput(f"{where or 'body'}: {first['msg']}", where)


async def read_body(request: Request, settings: Settings) -> bytes:
    chunks, size = [], 0
    try:
        # On the whole body, not each read: a client trickling a byte at a time would pass a per-read limit.
        async with asyncio.timeout(settings.body_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > settings.max_body_bytes:
                    raise PayloadTooLarge(f"body is over the {settings.max_body_bytes}-byte limit")
                chunks.append(chunk)
    except TimeoutError:
        # Close: the rest of the body may still come, and it is not the start of a next request.
        message = f"the body did not arrive within {settings.body_timeout_s:g} s"
        raise BodyTimeout(message, headers={"connection": "close"}) from None
    return b"".join(chunks)


async def parse(request: Request, settings: Settings, json_model: type[M], spec_model: type[BaseModel]):
    """(the inputs' field, the inputs: base64 strings, texts or raw bytes, the spec) from a JSON or a
    multipart body (images only)."""
    length = request.headers.get("content-length", "").lstrip("0")
    # isdigit() alone admits "²", which int() refuses; over 18 digits is over any limit, and over int()'s own.
    if length.isascii() and length.isdigit() and (len(length) > 18 or int(length) > settings.max_body_bytes):
        raise PayloadTooLarge(f"body is over the {settings.max_body_bytes}-byte limit")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        body = await read_body(request, settings)
        try:
            parsed = json_model.model_validate_json(body)
        except ValidationError as exc:
            raise validation_error(exc) from None
        field, inputs = parsed.given()
        return field, inputs, spec_model.model_validate(parsed.model_dump(exclude={"images", "texts"}))
    if kind == "multipart/form-data":
        return await parse_multipart(request, settings, spec_model)
    raise UnsupportedMediaType(f"content type {kind or '(none)'!r}: send application/json or multipart/form-data")


async def parse_multipart(request: Request, settings: Settings, spec_model: type[BaseModel]):
    # Read within the limit first: a chunked body has no Content-Length for `parse` to check.
    body = await read_body(request, settings)

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(
            max_files=settings.max_images + 1, max_fields=32, max_part_size=settings.max_image_bytes
        )
    except (MultiPartException, HTTPException) as exc:
        # Inside an app Starlette re-raises multipart errors as HTTPException(400); they are input errors.
        detail = exc.message if isinstance(exc, MultiPartException) else exc.detail
        raise InvalidInput(f"malformed multipart body: {detail}") from None
    try:
        images = []
        for part in form.getlist("image"):
            if not isinstance(part, UploadFile):
                raise InvalidInput("'image' parts must be files", "image")
            images.append(await part.read())
        if not images:
            raise InvalidInput("multipart body needs one or more file parts named 'image'", "image")
        return "images", images, await form_spec(form, spec_model)
    finally:
        await form.close()


async def form_spec(form: FormData, spec_model: type[B]) -> B:
    """The spec from a form's plain fields and its `spec` part, which wins over them."""
    # Plain fields (method=gradcam, top_k=3, target=1) are text: the same model reads them as the JSON values
    # they spell ("1" is class 1, as in JSON); the spec part is JSON, read as strictly as a JSON body.
    plain = {key: value for key in form.keys() - {"image", "spec"} if isinstance(value := form.get(key), str)}
    try:
        parsed = spec_model.model_validate_strings(plain)
    except ValidationError as exc:
        raise validation_error(exc) from None
    spec = form.get("spec")
    if spec is None:
        return parsed
    try:
        # pydantic's own parser: nesting depth and number size are bounded, and errors are ValidationErrors.
        from_spec = spec_model.model_validate_json(await spec.read() if isinstance(spec, UploadFile) else spec)
    except ValidationError as exc:
        raise validation_error(exc, whole="spec") from None
    return parsed.model_copy(update={key: getattr(from_spec, key) for key in from_spec.model_fields_set})
