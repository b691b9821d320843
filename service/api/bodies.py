"""Reading request bodies: JSON or multipart/form-data, within the size limits."""

from __future__ import annotations

import json
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.types import Message

from ..errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from ..settings import Settings

M = TypeVar("M", bound=BaseModel)


def validation_error(exc: ValidationError, prefix: str = "") -> InvalidInput:
    first = exc.errors()[0]
    where = prefix + ".".join(str(p) for p in first["loc"])
    return InvalidInput(f"{where or 'body'}: {first['msg']}", where or None)


async def read_body(request: Request, settings: Settings) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > settings.max_body_bytes:
            raise PayloadTooLarge(f"body is over the {settings.max_body_bytes}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def parse(request: Request, settings: Settings, json_model: type[M], spec_model: type[BaseModel]):
    """(images as base64 strings or raw bytes, the spec) from a JSON or a multipart body."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > settings.max_body_bytes:
        raise PayloadTooLarge(f"body is over the {settings.max_body_bytes}-byte limit")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        body = await read_body(request, settings)
        try:
            parsed = json_model.model_validate_json(body)
        except ValidationError as exc:
            raise validation_error(exc) from None
        return list(parsed.images), spec_model.model_validate(parsed.model_dump(exclude={"images"}))
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
        fields: dict = {}
        spec = form.get("spec")
        if spec is not None:
            text = (await spec.read()).decode("utf-8", "replace") if isinstance(spec, UploadFile) else spec
            try:
                fields = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"spec is not valid JSON: {exc}", "spec") from None
            if not isinstance(fields, dict):
                raise InvalidInput("spec must be a JSON object", "spec")
        for key in set(form.keys()) - {"image", "spec"}:  # plain form fields such as method=gradcam
            value = form.get(key)
            if isinstance(value, str):
                fields.setdefault(key, int(value) if key == "top_k" and value.isdigit() else value)
        try:
            return images, spec_model.model_validate(fields)
        except ValidationError as exc:
            raise validation_error(exc) from None
    finally:
        await form.close()
