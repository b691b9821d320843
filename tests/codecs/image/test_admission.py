"""service.codecs.image.admission: headers without pixels, an estimate that grows with what is asked, and default limits
that admit ordinary requests. The HTTP side and a measured peak are in tests/api/test_admission.py."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image, ImageFile

from service.api.v1.schemas import OutputOptions
from service.codecs.image import admission
from service.codecs.image.admission import Header, Work, estimate_bytes
from service.errors import InvalidImage, PayloadTooLarge
from service.explainers import default_registry
from service.models.spec import ModelSpec
from service.settings import Settings

RESNET = ModelSpec(name="resnet", architecture="torchvision:resnet50", num_classes=1000)  # 224x224 RGB
GiB = 2**30


def work(method: str | dict = "gradient", spec: ModelSpec = RESNET, **output) -> Work:
    explainer, params = default_registry().parse(method)
    return Work.of([explainer], spec, OutputOptions(**output))


def photos(n: int, width: int, height: int) -> list[Header]:
    return [Header(width, height, "RGB", "JPEG", width * height // 4)] * n  # ~2 bits a pixel


def encoded(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("headers", "asked"),
    [
        (photos(16, 1024, 1024), work()),
        (photos(16, 1024, 1024), work("smoothgrad")),
        (photos(16, 1024, 1024), work(heatmap=True, saliency="float16")),
        (photos(2, 4000, 3000), work(overlay=True)),
        (photos(2, 4000, 3000), work("gradcam", overlay=True, heatmap=True)),
        (photos(1, 4000, 3000), work(size="original", heatmap=True)),
        (photos(16, 4000, 3000), Work(RESNET.input_size, 3)),  # predict
    ],
    ids=["16x1MP", "16x1MP smoothgrad", "16x1MP heatmaps", "2x12MP overlays", "gradcam", "original", "predict"],
)
def test_default_limits_admit_ordinary_requests(headers, asked):
    admission.admit(headers, asked, Settings())


def test_the_36_megapixel_request_is_estimated_in_gigabytes():
    # 16 flat 6000x6000 PNGs at the original size with overlays: 11.5 GiB measured before admission existed.
    headers = [Header(6000, 6000, "RGB", "PNG", 120_000)] * 16
    assert estimate_bytes(headers, work(size="original", overlay=True)) > 10 * GiB


def test_the_estimate_grows_with_what_is_asked():
    two = photos(2, 3000, 2000)
    at_input = estimate_bytes(two, work())
    assert estimate_bytes(two, Work(RESNET.input_size, 3)) < at_input  # predict
    # At the input size the outputs are small: decoding is the peak, with or without a heatmap.
    assert at_input == estimate_bytes(two, work(heatmap=True)) < estimate_bytes(two, work(overlay=True))
    original = estimate_bytes(two, work(size="original"))
    assert at_input < original < estimate_bytes(two, work(size="original", reduce="none"))
    assert estimate_bytes(two, work(size="original", saliency="float16")) < original
    no_array = estimate_bytes(two, work(size="original", saliency="none"))
    assert no_array < estimate_bytes(two, work(size="original", saliency="none", normalize="percentile"))
    assert estimate_bytes(photos(4, 3000, 2000), work(size="original")) > original
    assert estimate_bytes(two, work("gradcam", size="original", reduce="none")) == original  # CAMs: one channel


def test_maps_count_every_method():
    explainer, _ = default_registry().parse("gradient")
    both = Work.of([explainer] * 2, RESNET, OutputOptions())
    assert both.maps == 2
    assert estimate_bytes(photos(2, 300, 200), both) > estimate_bytes(photos(2, 300, 200), work())


def test_inspect_reads_sizes_modes_and_formats_without_decoding(monkeypatch, png16):
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("pixels decoded"))
    rgb = Image.new("RGB", (30, 20), (1, 2, 3))
    rgba = rgb.copy()
    rgba.putalpha(128)
    raw = [
        encoded(rgb, "PNG"),
        base64.b64encode(encoded(rgb.convert("L"), "JPEG")).decode(),
        encoded(rgba, "WEBP"),
        png16(np.zeros((5, 7), np.uint16)),
    ]
    data, headers = admission.inspect(raw, Settings())
    assert [(h.width, h.height, h.mode, h.format) for h in headers] == [
        (30, 20, "RGB", "PNG"),
        (30, 20, "L", "JPEG"),
        (30, 20, "RGBA", "WEBP"),
        (7, 5, "I;16", "PNG"),
    ]
    assert [h.nbytes for h in headers] == [len(d) for d in data] and data[0] == raw[0]


def test_inspect_refuses_what_the_header_shows():
    settings = Settings(max_image_pixels=599)
    small = encoded(Image.new("RGB", (2, 2)), "PNG")
    with pytest.raises(PayloadTooLarge, match="30x20 pixels, over the 599-pixel limit") as refused:
        admission.inspect([small, encoded(Image.new("RGB", (30, 20)), "PNG")], settings)
    assert refused.value.field == "images.1"
    with pytest.raises(InvalidImage, match="not an image"):
        admission.inspect([b"GIF89a not really"], settings)
    with pytest.raises(InvalidImage, match="empty image"):
        admission.inspect([b""], settings)


@pytest.mark.parametrize(("mode", "size"), [("RGB", 4), ("RGBA", 4), ("LA", 4), ("L", 1), ("P", 1), ("I;16", 2)])
def test_pixel_bytes_are_what_pillow_keeps(mode, size):
    assert admission.pixel_bytes(mode) == size


@pytest.mark.parametrize(
    ("n", "text"), [(512 * 2**20, "512 MiB"), (int(2.34 * GiB), "2.3 GiB"), (1536, "1.5 KiB"), (12, "12 B")]
)
def test_sizes_read_as_people_write_them(n, text):
    assert admission.size(n) == text


def test_releasing_freed_memory_is_safe_to_call_anywhere():
    admission.release_freed_memory(admission.TRIM_FROM_PIXELS)
    admission.release_freed_memory(admission.TRIM_FROM_PIXELS)
