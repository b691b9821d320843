"""The report's pictures: mean maps on matplotlib's colormap with the region outlined, overlays on the image as
the model's input saw it, and highlighted texts; decoded back and checked pixel for pixel."""

from __future__ import annotations

import base64
import io

import numpy as np
from matplotlib import colormaps
from PIL import Image
from saliency_client import Token

from service.cli.audit import pictures
from service.cli.audit.region import Region


def decoded(uri: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri[len(prefix) :]))).convert("RGB"))


def jet(value: float) -> np.ndarray:
    return np.asarray(colormaps["jet"](value, bytes=True)[:3])


def test_a_mean_map_is_min_max_scaled_onto_the_colormap_with_the_region_outlined():
    saliency = np.full((12, 16), 0.2, dtype=np.float32)
    saliency[3, 5] = 0.6
    saliency[0, 0] = 0.1
    pixels = decoded(pictures.mean_map(saliency, "jet", Region(8, 6, 12, 10)))
    assert pixels.shape == (12, 16, 3)
    np.testing.assert_array_equal(pixels[3, 5], jet(1.0))
    np.testing.assert_array_equal(pixels[0, 0], jet(0.0))
    np.testing.assert_array_equal(pixels[1, 1], jet(0.2))  # (0.2 - 0.1) / (0.6 - 0.1)
    white = np.array([255, 255, 255])
    for y, x in [(5, 7), (5, 12), (10, 7), (10, 12), (7, 7)]:  # the outline is one pixel outside the box
        np.testing.assert_array_equal(pixels[y, x], white)
    np.testing.assert_array_equal(pixels[6, 8], jet(0.2))  # inside: the map


def test_an_overlay_blends_the_map_over_the_image_at_the_map_size(tmp_path):
    image = np.zeros((48, 48, 3), dtype=np.uint8)
    image[:, 24:] = (200, 100, 0)
    Image.fromarray(image).save(tmp_path / "a.png")
    saliency = np.zeros((24, 24), dtype=np.float32)
    saliency[0, 0] = 1.0
    pixels = decoded(pictures.overlay(str(tmp_path / "a.png"), saliency, "jet", None)).astype(int)
    assert pixels.shape == (24, 24, 3)
    np.testing.assert_array_equal(pixels[0, 0], np.rint(0.5 * jet(1.0)).astype(int))
    np.testing.assert_array_equal(pixels[5, 20], np.rint(0.5 * np.array([200, 100, 0]) + 0.5 * jet(0.0)).astype(int))


def test_an_image_of_another_aspect_ratio_is_shown_as_its_centre_crop(tmp_path):
    image = np.zeros((20, 60, 3), dtype=np.uint8)
    image[:, 20:40] = 255  # the middle third: what a centre crop to a square keeps
    Image.fromarray(image).save(tmp_path / "wide.png")
    pixels = decoded(pictures.overlay(str(tmp_path / "wide.png"), np.zeros((10, 10), np.float32), "gray", None))
    assert pixels.shape == (10, 10, 3)
    assert pixels[:, 1:-1].min() == 128  # white under a black (all-zero) map at alpha 0.5
    assert pixels.min() > 96  # the edges: bilinear filtering reaches a little past the crop, as the model's does


def test_an_unreadable_file_shows_the_map_alone(tmp_path):
    (tmp_path / "gone.png").write_bytes(b"not a png")
    saliency = np.eye(8, dtype=np.float32)
    overlay = decoded(pictures.overlay(str(tmp_path / "gone.png"), saliency, "jet", None))
    np.testing.assert_array_equal(overlay, decoded(pictures.mean_map(saliency, "jet", None)))


def test_large_pictures_are_scaled_down():
    assert decoded(pictures.mean_map(np.random.default_rng(0).random((400, 300)), "jet", None)).shape == (192, 144, 3)


def test_a_text_is_escaped_and_its_tokens_coloured():
    text = 'a <b>&"bold" claim'
    tokens = [
        Token("[CLS]", None, None, True, 0.0),
        Token("<b>", 2, 5, False, 1.0),
        Token("claim", 13, 18, False, -0.5),
        Token("[SEP]", None, None, True, 0.0),
    ]
    fragment = pictures.text(text, tokens)
    assert "<b>" not in fragment and "&lt;b&gt;" in fragment and "&amp;&quot;bold&quot;" in fragment
    assert fragment.count('class="token"') == 2 and 'title="1.000"' in fragment and 'title="-0.500"' in fragment
