"""A parsed v2 call through the protocol-neutral core (core.predict, or core.explain with the `explain`
parameter) -> the response's JSON object and binary outputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ... import core
from ...codecs.options import OutputOptions
from ...core.detect import Detected, DetectionsExplained
from ...errors import InvalidInput, within_field
from ...models import ModelSpec
from ..common import plain
from . import texts
from .parse import Call
from .schemas import ExplainParameter
from .tensors import array_of, output
from .texts import Values


async def run(services: core.Services, model: str, call: Call) -> tuple[dict[str, Any], list[bytes]]:
    kind = services.pool.spec(model).kind
    if kind == "causal_lm":
        return respond(model, call, *await texts.causal(services, model, call))
    if call.explain is None:
        predicted = await core.predict(services, model, call.field, call.inputs, top_k=1)
        assert not isinstance(predicted, core.causal.Generated)
        if isinstance(predicted, Detected):
            return detections(model, call, predicted, services.pool.spec(model).max_detections)
        return response(model, call, predicted.logits, texts.tokens(predicted.inputs) if kind == "text" else {}, None)
    spec = call.explain
    assert isinstance(spec, ExplainParameter)
    prefix = "parameters.explain"
    options = OutputOptions(saliency="float32", reduce=spec.output.reduce, normalize=spec.output.normalize)
    # The core names these fields from a v1 request's root; here they sit in the explain parameter.
    with within_field("method", f"{prefix}.method"), within_field("target", f"{prefix}.target"):
        with within_field("output", f"{prefix}.output"):
            explained = await core.explain(
                services,
                model,
                call.field,
                call.inputs,
                [spec.method],
                target=plain(spec.target),
                objective=spec.objective,
                top_k=1,
                output=options,
            )
    assert not isinstance(explained, core.causal.AnswersExplained)
    if isinstance(explained, DetectionsExplained):
        return explained_boxes(model, call, explained, services.pool.spec(model), isinstance(spec.target, list))
    method = explained.methods[0]
    services.runner.metrics.images.labels(model, method["name"]).inc(len(explained.maps))
    if kind == "text":
        more = {**texts.tokens(explained.inputs), "scores": texts.scores(explained.maps)}
    else:  # the same float32 maps that v1's explain returns, one per input: [N, H, W] (or [N, C, H, W])
        more = {"saliency": np.stack([array_of(maps[0]["saliency"]) for maps in explained.maps])}
    echo = {"method": method, "objective": explained.objective, "target": [t.index for t in explained.targets]}
    return response(model, call, explained.logits, more, echo)


def detections(
    model: str, call: Call, found: Detected, k: int, more: dict[str, np.ndarray] | None = None
) -> tuple[dict[str, Any], list[bytes]]:
    """A detector's reported detections as [N, K, 4] boxes, [N, K] scores and labels (K = max_detections)."""
    n = len(found.detections)
    boxes, scores, labels = np.zeros((n, k, 4), np.float32), np.zeros((n, k), np.float32), np.full((n, k), -1)
    for i, image in enumerate(found.detections):
        for j, d in enumerate(image):
            boxes[i, j], scores[i, j], labels[i, j] = d.box, d.score, d.index
    values: dict[str, np.ndarray | None] = {"boxes": boxes, "scores": scores, "labels": labels, **(more or {})}
    return respond(model, call, values, None)


def explained_boxes(
    model: str, call: Call, explained: DetectionsExplained, spec: ModelSpec, given: bool
) -> tuple[dict[str, Any], list[bytes]]:
    """A detector's explained boxes as detection tensors, and `saliency` [N, K, H, W]: each box's map (v1's
    float32 maps at the input size), zeros for the padding boxes. `given`: the boxes are the client's (their
    scores their affinity to the detections, as v1 reports), echoed per input with class indices as labels."""
    n, k = len(explained.detections), spec.max_detections
    saliency = np.zeros((n, k, *spec.input_size), np.float32)
    for i, per_box in enumerate(explained.maps):
        for j, fields in enumerate(per_box):
            saliency[i, j] = array_of(fields[0]["saliency"])
    found = Detected(model, explained.detections, explained.timing_ms, torch.zeros(0))
    body, binary = detections(model, call, found, k, {"saliency": saliency})
    target: Any = "detections"
    if given:
        target = [[{"box": list(d.box), "label": d.index} for d in image] for image in explained.detections]
    body["parameters"] = {"explain": {"method": explained.methods[0], "target": target}}
    return body, binary


def response(
    model: str, call: Call, logits: Tensor | None, more: Values, echo: dict[str, Any] | None
) -> tuple[dict[str, Any], list[bytes]]:
    """A classifier's logits and probabilities, and `more` (saliency; a text's tokens and scores)."""
    assert logits is not None
    logits = logits.float().cpu()
    values = {"logits": logits.numpy(), "probabilities": logits.softmax(dim=1).numpy(), **more}
    return respond(model, call, values, None if echo is None else {"explain": echo})


def respond(
    model: str, call: Call, values: Values, parameters: dict[str, Any] | None
) -> tuple[dict[str, Any], list[bytes]]:
    outputs, binary = [], []
    for name, as_binary in call.outputs:
        array = values[name]
        assert array is not None  # parse offers an explanation's outputs only with the explain parameter
        if array.dtype != object and not np.isfinite(array).all():
            # Only tensor inputs can do this (huge finite values overflow inside the model).
            raise InvalidInput(
                f"the model's {name} are not finite for these inputs: are they in its input space?", call.field
            )
        tensor, data = output(name, array, as_binary)
        outputs.append(tensor)
        if data is not None:
            binary.append(data)
    body: dict[str, Any] = {"model_name": model, "outputs": outputs}
    if call.id is not None:
        body["id"] = call.id
    if parameters is not None:
        body["parameters"] = parameters
    return body, binary
