"""Codecs at the edges, one per modality behind one contract (base.py): request inputs -> engine rows;
explanations -> the response's maps."""

from __future__ import annotations

from functools import cache

from .base import Batch, Codec


@cache
def codec_for(kind: str, field: str | None = None) -> Codec:
    """The codec of a model kind (and of the request field, where a kind takes inputs in two forms); the
    text codec (and transformers) is imported only when a text model is."""
    if kind == "image":
        from .image import ImageCodec
        from .image.tensor import TensorCodec

        if field == TensorCodec.field:
            return TensorCodec()

        return ImageCodec()
    if kind == "detection":
        from .image.detections import DetectionCodec

        return DetectionCodec()
    if kind == "causal_lm":
        from .text.causal import CausalCodec

        return CausalCodec()
    if kind == "text":
        from .text import TextCodec

        return TextCodec()
    raise ValueError(f"no codec for {kind!r} models")


__all__ = ["Batch", "Codec", "codec_for"]
