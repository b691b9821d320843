"""A model's tensors in the protocol: what its metadata lists and what an inference request may name.

Input names are the core's input fields: `images` (encoded pictures, decoded like v1's), `input` (FP32 already
in model-input space: the tensor codec) and `texts`.
"""

from __future__ import annotations

from ...codecs.image.tensor import TensorCodec
from ...models.spec import ModelSpec
from ...settings import Settings
from .schemas import ModelMetadata, TensorMetadata

PLATFORM = "pytorch"
ANY = -1
SLACK_VALUES = 1024  # the request's own fields, beside its tensor data


def inputs(spec: ModelSpec) -> list[TensorMetadata]:
    if spec.kind == "text":
        return [TensorMetadata(name="texts", datatype="BYTES", shape=[ANY])]
    return [
        TensorMetadata(name="images", datatype="BYTES", shape=[ANY]),
        TensorMetadata(name=TensorCodec.field, datatype="FP32", shape=[ANY, spec.channels, *spec.input_size]),
    ]


def outputs(spec: ModelSpec, explained: bool = True) -> list[TensorMetadata]:
    """Every output; `saliency` (image models) only comes with the `explain` parameter. A detector's are its
    reported detections, padded to max_detections (score 0, label -1), boxes in the image's pixels."""
    if spec.kind == "detection":
        k = spec.max_detections
        found = [
            TensorMetadata(name="boxes", datatype="FP32", shape=[ANY, k, 4]),
            TensorMetadata(name="scores", datatype="FP32", shape=[ANY, k]),
            TensorMetadata(name="labels", datatype="INT64", shape=[ANY, k]),
        ]
        if explained:  # each box's map, zeros for the padding boxes
            found.append(TensorMetadata(name="saliency", datatype="FP32", shape=[ANY, k, *spec.input_size]))
        return found
    classes = [ANY, spec.num_classes]
    found = [
        TensorMetadata(name="logits", datatype="FP32", shape=classes),
        TensorMetadata(name="probabilities", datatype="FP32", shape=classes),
    ]
    if spec.kind == "image" and explained:
        # [N, C, H, W] instead with output.reduce "none" on a method that attributes pixels.
        found.append(TensorMetadata(name="saliency", datatype="FP32", shape=[ANY, *spec.input_size]))
    return found


def metadata(spec: ModelSpec) -> ModelMetadata:
    return ModelMetadata(name=spec.name, platform=PLATFORM, inputs=inputs(spec), outputs=outputs(spec))


def max_items(spec: ModelSpec, settings: Settings) -> int:
    """Inputs (the first dimension) a request may hold."""
    return settings.max_texts if spec.kind == "text" else settings.max_images


def max_json_values(spec: ModelSpec, settings: Settings) -> int:
    """JSON values the largest valid request for the model holds: an FP32 batch as JSON numbers, or texts
    (whose commas are counted too)."""
    if spec.kind == "text":
        return settings.max_texts * settings.max_text_chars + SLACK_VALUES
    return settings.max_images * spec.channels * spec.input_size[0] * spec.input_size[1] + SLACK_VALUES
