"""Codecs at the edges, one per modality behind one contract (base.py): request inputs -> engine rows;
explanations -> the response's maps."""

from __future__ import annotations

from functools import cache

from .base import Batch, Codec


@cache
def codec_for(kind: str) -> Codec:
    """The codec of a model kind; the text codec (and transformers) is imported only when a text model is."""
    if kind == "image":
        from .image import ImageCodec

        return ImageCodec()
    if kind == "text":
        from .text import TextCodec

        return TextCodec()
    raise ValueError(f"no codec for {kind!r} models")


__all__ = ["Batch", "Codec", "codec_for"]
