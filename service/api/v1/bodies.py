"""Reading request bodies: JSON, multipart/form-data, or one raw image with its spec in the query string, within
the size limits."""

from __future__ import annotations

import json
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.types import Message

from ...errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from ...settings import Settings
from ..common import read_body
from .schemas import Inputs

M = TypeVar("M", bound=Inputs)
B = TypeVar("B", bound=BaseModel)

# A raw body of one of these is one image (as TorchServe takes it); the decoder goes by the bytes, not the type.
RAW_IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff")
JSON_FIELDS = ("method", "methods", "output", "evaluate")  # query parameters that may hold a JSON object or list


def validation_error(exc: ValidationError, whole: str | None = None) -> InvalidInput:
    """The first error, at its field; `whole` names the part an error about the whole document is in."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or whole
    return InvalidInput(f"{where or 'body'}: {first['msg']}", where)


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
    if kind in RAW_IMAGE_TYPES:
        image = await read_body(request, settings)
        return "images", [image], query_spec(request, spec_model)
    raise UnsupportedMediaType(
        f"content type {kind or '(none)'!r}: send application/json, multipart/form-data or one image "
        f"({', '.join(RAW_IMAGE_TYPES)})"
    )


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
    plain = {key: value for key in form.keys() - {"image", "spec"} if isinstance(value := form.get(key), str)}
    spec = form.get("spec")
    return merged_spec(plain, await spec.read() if isinstance(spec, UploadFile) else spec, spec_model, json_fields=())


def query_spec(request: Request, spec_model: type[B]) -> B:
    """A raw image's spec: the query string, read as a form's fields (`spec` too), where an object-valued field
    may also hold its JSON (method={"name": "smoothgrad", "samples": 8}): a URL has no parts for a spec file."""
    params = request.query_params
    for key in params:
        if len(params.getlist(key)) > 1:
            raise InvalidInput(f"query parameter {key!r} is given more than once", key)
    plain = {key: value for key, value in params.items() if key != "spec"}
    return merged_spec(plain, params.get("spec"), spec_model, json_fields=JSON_FIELDS)


def merged_spec(
    plain: dict[str, str], spec: str | bytes | None, spec_model: type[B], json_fields: tuple[str, ...]
) -> B:
    """Plain fields (method=gradcam, top_k=3, target=1) are text: the same model reads them as the JSON values
    they spell ("1" is class 1, as in JSON). A JSON object or list in one of `json_fields`, and the `spec` part,
    are JSON, read as strictly as a JSON body; `spec` wins over them all."""
    given = {k: v for k, v in plain.items() if not (k in json_fields and v.lstrip()[:1] in ("{", "["))}
    try:
        parsed = spec_model.model_validate_strings(given)
    except ValidationError as exc:
        raise validation_error(exc) from None
    objects = {}
    for key in plain.keys() - given.keys():
        try:
            objects[key] = from_json(plain[key])  # pydantic's parser: nesting depth and number size are bounded
        except ValueError as exc:
            raise InvalidInput(f"{key}: not valid JSON: {exc}", key) from None
    for part, whole in ((json.dumps(objects) if objects else None, None), (spec, "spec")):
        if part is None:
            continue
        try:
            found = spec_model.model_validate_json(part)
        except ValidationError as exc:
            raise validation_error(exc, whole=whole) from None
        parsed = parsed.model_copy(update={key: getattr(found, key) for key in found.model_fields_set})
    return parsed


def raw_image_doc(spec_model: type[BaseModel]) -> tuple[dict, list[dict]]:
    """The OpenAPI content of a raw image body, and the query parameters that carry its spec."""
    content = {kind: {"schema": {"type": "string", "format": "binary"}} for kind in RAW_IMAGE_TYPES}
    when = "Only with a raw image body (Content-Type: image/...): "
    spec = {"type": "string", "description": f"JSON object: {spec_model.__name__} (wins over the other parameters)"}
    params = [{"name": "spec", "in": "query", "required": False, "schema": spec, "description": when + "the spec."}]
    for name, schema in spec_model.model_json_schema()["properties"].items():
        options = [option for option in schema.get("anyOf", [schema]) if option.get("type") != "null"]
        simple = len(options) == 1 and options[0].get("type") in ("integer", "string")
        kept = {k: v for k, v in options[0].items() if k in ("type", "enum", "minimum", "maximum")} if simple else {}
        what = "a JSON object or list, or " if name in JSON_FIELDS else ""
        params.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": kept or {"type": "string"},
                "description": f"{when}{what}the value of the JSON field `{name}` as text.",
            }
        )
    return content, params
