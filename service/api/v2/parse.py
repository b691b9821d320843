"""A v2 inference request -> what the core takes: the input field and its inputs, the explain (and a causal
LM's generate) parameter and the outputs to return. Errors name their place from the request's root
(`inputs.0.shape`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from ...core.generation import GenerateOptions
from ...errors import InvalidInput
from ...models.spec import ModelSpec
from . import signature, tensors
from .schemas import CausalExplainParameter, ExplainParameter, InferenceRequest, RequestInput

Model = TypeVar("Model", bound=BaseModel)


@dataclass
class Call:
    field: str  # the core's input field: images, input or texts
    inputs: list
    explain: ExplainParameter | CausalExplainParameter | None
    generate: GenerateOptions | None  # a causal LM's
    outputs: list[tuple[str, bool]]  # (name, as binary data), in the order to return them
    id: str | None
    timeout_us: int | None


def invalid(exc: ValidationError, prefix: str = "") -> InvalidInput:
    first = exc.errors()[0]
    where = ".".join([prefix, *map(str, first["loc"])] if prefix else map(str, first["loc"]))
    return InvalidInput(f"{where or 'body'}: {first['msg']}", where or None)


def parse(header: bytes, binary: memoryview, spec: ModelSpec, max_items: int) -> Call:
    try:
        request = InferenceRequest.model_validate_json(header)
    except ValidationError as exc:
        raise invalid(exc) from None
    if len(request.inputs) != 1:
        names = ", ".join(f"{t.name} ({t.datatype})" for t in signature.inputs(spec))
        raise InvalidInput(f"send one input, one of: {names}", "inputs")
    (given,) = request.inputs
    data = binary_data(request, binary)
    field, inputs = read_input(given, data[0], spec, max_items)
    explain = explain_parameter(request.parameters.explain, spec)
    return Call(
        field,
        inputs,
        explain,
        generate_parameter(request.parameters.generate, spec),
        requested_outputs(request, spec, explain is not None),
        request.id,
        request.parameters.timeout,
    )


def binary_data(request: InferenceRequest, binary: memoryview) -> list[memoryview | None]:
    """Each input's binary data, cut from what follows the JSON object in the inputs' order."""
    out: list[memoryview | None] = []
    offset = 0
    for i, given in enumerate(request.inputs):
        size = given.parameters.binary_data_size
        if size is None:
            out.append(None)
            continue
        if size > len(binary) - offset:
            raise InvalidInput(
                f"binary_data_size is {size}; {len(binary) - offset} bytes of binary data are left after the JSON "
                "object (is the Inference-Header-Content-Length header there?)",
                f"inputs.{i}.parameters.binary_data_size",
            )
        out.append(binary[offset : offset + size])
        offset += size
    if offset != len(binary):
        raise InvalidInput(
            f"{len(binary) - offset} bytes after the JSON object that no input's binary_data_size covers", "inputs"
        )
    return out


def read_input(given: RequestInput, binary: memoryview | None, spec: ModelSpec, max_items: int) -> tuple[str, list]:
    """(the core's field, its inputs): encoded images or texts as bytes or strings, or (C, H, W) arrays."""
    datatypes = {t.name: t.datatype for t in signature.inputs(spec)}
    if given.name not in datatypes:
        names = ", ".join(f"{name} ({datatype})" for name, datatype in datatypes.items())
        raise InvalidInput(
            f"model {spec.name!r} has no input {given.name!r}; it takes one of: {names}", "inputs.0.name"
        )
    if given.datatype != datatypes[given.name]:
        raise InvalidInput(
            f"input {given.name!r} is {datatypes[given.name]}, not {given.datatype}", "inputs.0.datatype"
        )
    if (binary is None) == (given.data is None):
        raise InvalidInput(
            "give the tensor's `data`, or its binary_data_size and binary data: one of the two", "inputs.0.data"
        )
    shape, name = given.shape, given.name
    count = tensors.elements(shape)
    if given.datatype == "BYTES":
        if len(shape) not in (1, 2) or shape[1:] not in ([], [1]):
            raise InvalidInput(f"shape {shape}: send [N] (or [N, 1]) elements", "inputs.0.shape")
    elif len(shape) != 4:
        raise InvalidInput(f"shape {shape} is not [N, C, H, W]", "inputs.0.shape")
    if not 1 <= shape[0] <= max_items:
        raise InvalidInput(f"{shape[0]} inputs; send 1 to {max_items} (the limit)", "inputs.0.shape")
    if binary is not None:
        if given.datatype == "FP32":
            return name, list(tensors.floats_from_binary(binary, count, name).reshape(shape))
        items = tensors.bytes_from_binary(binary, count, name)
        return name, items if name == "images" else [utf8(item, f"{name}.{i}") for i, item in enumerate(items)]
    assert given.data is not None
    if given.datatype == "FP32":
        return name, list(tensors.floats_from_json(given.data, count, name).reshape(shape))
    return name, tensors.strings_from_json(given.data, count, name)


def utf8(data: bytes, field: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"not UTF-8 text ({exc.reason} at byte {exc.start})", field) from None


def explain_parameter(raw: dict | str | None, spec: ModelSpec) -> ExplainParameter | CausalExplainParameter | None:
    if raw is None:
        return None
    if spec.kind == "causal_lm":
        return validated(CausalExplainParameter, raw, "parameters.explain")
    parsed = validated(ExplainParameter, raw, "parameters.explain")
    if spec.kind == "text" and parsed.output.reduce == "none":
        # `scores` is [N, T]: one number per token, not the embedding's D.
        raise InvalidInput("a text's scores are one per token: reduce with sum, sum_abs, max_abs or l2",
                           "parameters.explain.output.reduce")  # fmt: skip
    return parsed


def generate_parameter(raw: dict | str | None, spec: ModelSpec) -> GenerateOptions | None:
    if raw is None:
        return None
    if spec.kind != "causal_lm":
        where = "parameters.generate"
        raise InvalidInput(f"is for causal language models; {spec.name!r} is not one (kind {spec.kind!r})", where)
    return validated(GenerateOptions, raw, "parameters.generate")


def validated(schema: type[Model], raw: dict | str, field: str) -> Model:
    """A parameter as its schema, given as an object or as the same object in a JSON string."""
    try:
        return schema.model_validate_json(raw) if isinstance(raw, str) else schema.model_validate(raw)
    except ValidationError as exc:
        raise invalid(exc, field) from None


def requested_outputs(request: InferenceRequest, spec: ModelSpec, explained: bool) -> list[tuple[str, bool]]:
    available = [t.name for t in signature.outputs(spec, explained)]
    listed = {t.name for t in signature.listed(spec)}
    default = request.parameters.binary_data_output
    if request.outputs is None:
        return [(name, default) for name in available]
    out: list[tuple[str, bool]] = []
    for i, wanted in enumerate(request.outputs):
        if wanted.name in listed and wanted.name not in available:
            # A causal LM's generation tensors (token_ids) are not an explanation's (answer_ids).
            needs = "comes without" if explained else "needs"
            raise InvalidInput(f"output {wanted.name!r} {needs} the `explain` parameter", f"outputs.{i}.name")
        if wanted.name not in available:
            raise InvalidInput(
                f"model {spec.name!r} has no output {wanted.name!r}; it has: {', '.join(available)}",
                f"outputs.{i}.name",
            )
        if wanted.name in (name for name, _ in out):
            raise InvalidInput(f"output {wanted.name!r} is requested twice", f"outputs.{i}.name")
        binary = wanted.parameters.binary_data
        out.append((wanted.name, default if binary is None else binary))
    return out
