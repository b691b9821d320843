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
    reduce: Reduce | None = Field(
        None,
        description="Over channels (images; default max_abs; none returns (C, H, W)) or over the embedding "
        "(texts; default sum for integrated_gradients and input_x_gradient, l2 for the others).",
    )
    normalize: Normalize | None = Field(
        None,
        description="Per input: minmax -> [0, 1] (the default for images); percentile -> [-1, 1] keeping the sign "
        "(the default for texts); none.",
    )
    size: Literal["input", "original"] = Field("input", description="Model input size or the uploaded size.")
    heatmap: bool = Field(False, description="Include a colormapped PNG of the map.")
    overlay: bool = Field(False, description="Include the heatmap alpha-blended on the original image (PNG).")
    colormap: Colormap = "jet"
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="Heatmap weight in the overlay.")
    html: bool = Field(False, description="Texts: include an HTML fragment of the text highlighted by the scores.")

    def filled(self, reduce: Reduce, normalize: Normalize) -> Filled:
        """These options with a model kind's defaults where the client left them out."""
        fields = self.model_dump()
        return Filled.model_validate(
            fields | {"reduce": self.reduce or reduce, "normalize": self.normalize or normalize}
        )


class Filled(OutputOptions):
    """Output options with the defaults of the model's kind (and method) in place: what codecs render with."""

    reduce: Reduce
    normalize: Normalize
