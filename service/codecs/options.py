"""What a client asks the codecs to render: array encoding, reduction, normalization, PNGs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..explainers.postprocess import Normalize, Reduce
COLORMAPS = ("jet", "viridis", "inferno", "turbo", "hot", "magma", "gray", "RdBu_r", "coolwarm", "bwr")
Colormap = Literal[COLORMAPS]  # type: ignore[valid-type]


class Strict(BaseModel):
    # strict: a JSON string is not a number, nor true a 1, as the published schema says (the multipart
    # form's text fields are parsed with model_validate_strings, which reads "3" as 3 on purpose).
    model_config = ConfigDict(extra="forbid", strict=True)


class OutputOptions(Strict):
    saliency: Literal["float32", "float16", "uint8", "none"] = Field(
        "float32", description="Array encoding; uint8 is the normalized map scaled to 0..255; none omits it."
    )
    reduce: Reduce = Field("max_abs", description="Channel reduction; none returns (C, H, W).")
    normalize: Normalize = Field("minmax", description="Per image: minmax -> [0, 1]; percentile -> [-1, 1].")
    size: Literal["input", "original"] = Field("input", description="Model input size or the uploaded size.")
    heatmap: bool = Field(False, description="Include a colormapped PNG of the map.")
    overlay: bool = Field(False, description="Include the heatmap alpha-blended on the original image (PNG).")
    colormap: Colormap = "jet"
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="Heatmap weight in the overlay.")
