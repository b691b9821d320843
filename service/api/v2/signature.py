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
TEXTS = ("text", "causal_lm")


def tensor(name: str, datatype: str, *shape: int) -> TensorMetadata:
    return TensorMetadata(name=name, datatype=datatype, shape=list(shape))


def inputs(spec: ModelSpec) -> list[TensorMetadata]:
    if spec.kind in TEXTS:
        return [tensor("texts", "BYTES", ANY)]
    return [
        tensor("images", "BYTES", ANY),
        tensor(TensorCodec.field, "FP32", ANY, spec.channels, *spec.input_size),
    ]


def outputs(spec: ModelSpec, explained: bool = True) -> list[TensorMetadata]:
    """The outputs of a call with (`explained`) or without the `explain` parameter. A detector's are its
    reported detections, padded to max_detections (score 0, label -1), boxes in the image's pixels. Token
    tensors are padded to the batch's longest: ids and offsets with -1, scores and log-probabilities with 0."""
    if spec.kind == "causal_lm":
        return causal_outputs(explained)
    if spec.kind == "detection":
        k = spec.max_detections
        found = [tensor("boxes", "FP32", ANY, k, 4), tensor("scores", "FP32", ANY, k)]
        found.append(tensor("labels", "INT64", ANY, k))
        if explained:  # each box's map, zeros for the padding boxes
            found.append(tensor("saliency", "FP32", ANY, k, *spec.input_size))
        return found
    found = [tensor("logits", "FP32", ANY, spec.num_classes), tensor("probabilities", "FP32", ANY, spec.num_classes)]
    if spec.kind == "text":
        # Offsets are characters of the text; -1, -1 for special tokens.
        found += [tensor("token_ids", "INT64", ANY, ANY), tensor("token_offsets", "INT64", ANY, ANY, 2)]
        if explained:  # v1's per-token scores of the method
            found.append(tensor("scores", "FP32", ANY, ANY))
    elif explained:
        # [N, C, H, W] instead with output.reduce "none" on a method that attributes pixels.
        found.append(tensor("saliency", "FP32", ANY, *spec.input_size))
    return found


def causal_outputs(explained: bool) -> list[TensorMetadata]:
    """Generation: the continuation's ids [N, G], their log-probabilities and the decoded text. With `explain`:
    the answer's ids [N, K], and per answer token the scores over the S scored tokens (the prompt's, then with
    include_generated the answer's)."""
    prompt = tensor("prompt_ids", "INT64", ANY, ANY)
    if not explained:
        generated = [tensor("token_ids", "INT64", ANY, ANY), tensor("log_probs", "FP32", ANY, ANY)]
        return [*generated, tensor("text", "BYTES", ANY), prompt]
    return [
        prompt,
        tensor("answer_ids", "INT64", ANY, ANY),
        tensor("log_probs", "FP32", ANY, ANY),
        tensor("scores", "FP32", ANY, ANY, ANY),
        tensor("answer_scores", "FP32", ANY, ANY),
        tensor("text", "BYTES", ANY),
    ]


def listed(spec: ModelSpec) -> list[TensorMetadata]:
    """Every output a call may return, with the `explain` parameter or without it."""
    out = outputs(spec, explained=False)
    return out + [t for t in outputs(spec, explained=True) if t.name not in {o.name for o in out}]


def metadata(spec: ModelSpec) -> ModelMetadata:
    return ModelMetadata(name=spec.name, platform=PLATFORM, inputs=inputs(spec), outputs=listed(spec))


def max_items(spec: ModelSpec, settings: Settings) -> int:
    """Inputs (the first dimension) a request may hold."""
    return settings.max_texts if spec.kind in TEXTS else settings.max_images


def max_json_values(spec: ModelSpec, settings: Settings) -> int:
    """JSON values the largest valid request for the model holds: an FP32 batch as JSON numbers, or texts
    (whose commas are counted too; a causal LM's targets in the explain parameter as many again)."""
    if spec.kind in TEXTS:
        return settings.max_texts * settings.max_text_chars * (2 if spec.kind == "causal_lm" else 1) + SLACK_VALUES
    return settings.max_images * spec.channels * spec.input_size[0] * spec.input_size[1] + SLACK_VALUES
