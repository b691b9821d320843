"""What v1 and v2 share on the wire: the error body, the vocabulary of a method and a target (a detector's
boxes included), reading a body within its limits, and OpenAPI request schemas written in place."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import Request
from pydantic import BaseModel, Field, StrictInt

from ..codecs.options import Strict
from ..errors import BodyTimeout, PayloadTooLarge
from ..settings import Settings

TargetItem = Annotated[StrictInt, Field(ge=0)] | str  # strict: JSON true is not class 1
MethodSpec = str | dict[str, Any]
TimeoutMs = Annotated[
    StrictInt | None,
    Field(ge=1, le=86_400_000, description="Deadline in ms; the server's maximum (request_timeout_s) caps it."),
]


class BoxTarget(Strict):
    """A box a detector's map is made for: scored in each pass by the detection matching it best."""

    box: list[float] = Field(
        min_length=4, max_length=4, description="x0, y0, x1, y1 in the image's pixels (x right, y down)."
    )
    label: TargetItem = Field(description="The class: a label or a class index.")


# A class target (one for every input, or one per input), or a detector's boxes (for every image, or per image).
Target = TargetItem | list[TargetItem] | list[BoxTarget] | list[list[BoxTarget]]


def plain(target: Any) -> Any:
    """Box targets as the plain dicts the core reads (it never sees an API's schemas); the core checks them."""
    if isinstance(target, list):
        return [plain(item) for item in target]
    return target.model_dump() if isinstance(target, BoxTarget) else target


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None


class ErrorBody(BaseModel):
    error: ErrorDetail


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


def self_contained(model: type[BaseModel]) -> dict:
    """The model's JSON schema with its `$defs` written in place: an operation cannot add to the components.

    (Request models are not recursive, so this ends.)
    """
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                siblings = {key: value for key, value in node.items() if key != "$ref"}
                return inline({**defs[ref.removeprefix("#/$defs/")], **siblings})
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    return inline(schema)
