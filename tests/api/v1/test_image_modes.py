"""Images in the modes PNG, JPEG and WebP can hold: 16-bit ones explain exactly like their 8-bit twins, and
the odd modes (palette with transparency, grey+alpha, 1-bit, CMYK) are read as the picture they show."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

SPEC = json.dumps({"output": {"overlay": True, "size": "original"}})


def explain(client, data: bytes, model: str = "shapes18") -> dict:
    files = [("image", ("upload", data, "application/octet-stream"))]
    response = client.post(f"/v1/models/{model}/explain", files=files, data={"spec": SPEC})
    assert response.status_code == 200, response.text
    body = response.json()
    body.pop("timing_ms")
    return body


def png(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


@pytest.fixture(scope="module")
def picture(photos) -> Image.Image:
    """A real photograph, 8-bit RGB, small enough to keep the overlays cheap."""
    return Image.open(io.BytesIO(photos["flower.png"].data)).convert("RGB").resize((96, 64))


@pytest.mark.parametrize("layout", ["L", "RGB"])
def test_a_16_bit_png_explains_like_its_8_bit_twin(client, picture, png16, layout):
    pixels = np.asarray(picture.convert(layout))
    by_8_bits = explain(client, png(Image.fromarray(pixels)))
    by_16_bits = explain(client, png16(pixels.astype(np.uint16) * 257))
    assert by_16_bits == by_8_bits  # predictions, the map and the overlay


def palette_with_transparency(picture: Image.Image) -> tuple[bytes, Image.Image]:
    image = picture.quantize(16)
    return png(image, transparency=0), image.convert("RGB")


def grey_with_alpha(picture: Image.Image) -> tuple[bytes, Image.Image]:
    grey = picture.convert("L")
    return png(Image.merge("LA", (grey, grey.point(lambda v: 255 - v)))), grey


def rgba(picture: Image.Image) -> tuple[bytes, Image.Image]:
    return png(Image.merge("RGBA", (*picture.split(), picture.convert("L")))), picture


def one_bit(picture: Image.Image) -> tuple[bytes, Image.Image]:
    image = picture.convert("1")
    return png(image), image.convert("L")


@pytest.mark.parametrize("make", [palette_with_transparency, grey_with_alpha, rgba, one_bit], ids=lambda f: f.__name__)
def test_odd_modes_explain_like_the_picture_they_show(client, picture, make):
    data, shown = make(picture)
    assert explain(client, data) == explain(client, png(shown))


@pytest.mark.parametrize(
    ("fmt", "image", "options"),
    [
        ("JPEG", Image.new("CMYK", (40, 30), (0, 255, 255, 0)), {}),
        ("JPEG", Image.new("L", (40, 30), 90), {}),
        ("WEBP", Image.new("RGBA", (40, 30), (200, 10, 10, 100)), {"lossless": True}),
        ("PNG", Image.new("RGB", (1, 1), "red"), {}),
        ("PNG", Image.new("RGB", (1, 900), "red"), {}),
        ("PNG", Image.new("L", (900, 1), 30), {}),
    ],
    ids=["cmyk-jpeg", "grey-jpeg", "rgba-webp", "1x1", "1x900", "900x1"],
)
@pytest.mark.parametrize("model", ["shapes18", "crop18"])  # exact resize, and a centre crop of the shorter side
def test_other_modes_and_shapes_get_their_map(client, open_png, fmt, image, options, model):
    result = explain(client, png(image, fmt, **options), model)["results"][0]
    assert result["saliency"]["shape"] == [image.height, image.width]
    assert open_png(result["overlay_png"]).size == image.size
