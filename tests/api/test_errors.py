"""A corpus of bad requests: each gets its 4xx (or 503) JSON error with the right code, never a 500,
and the server answers a good request right after it."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import numpy as np
import pytest
from PIL import Image

EXPLAIN = "/v1/models/shapes18/explain"
PREDICT = "/v1/models/shapes18/predict"
ANY = object()  # the error's `field` is not checked


@dataclass(frozen=True)
class Inputs:
    good: str  # base64 of a real JPEG
    files: dict[str, bytes] = field(default_factory=dict)  # name -> bytes

    def b64(self, name: str) -> str:
        return base64.b64encode(self.files[name]).decode("ascii")


Built = tuple[str, str, dict]  # HTTP method, path, keyword arguments of TestClient.request


@dataclass(frozen=True)
class Bad:
    id: str
    status: int
    code: str
    build: Callable[[Inputs], Built]
    field: object = ANY


def explain(path: str = EXPLAIN, images: Callable[[Inputs], list] | None = None, **spec) -> Callable[[Inputs], Built]:
    def build(i: Inputs) -> Built:
        return "POST", path, {"json": {"images": images(i) if images else [i.good], **spec}}

    return build


def raw(content: bytes, content_type: str | None, path: str = EXPLAIN) -> Callable[[Inputs], Built]:
    headers = {"content-type": content_type} if content_type else {}
    return lambda i: ("POST", path, {"content": content, "headers": headers})


def image(name: str) -> Callable[[Inputs], list]:
    return lambda i: [i.b64(name)]


def parts(*names: str, data: dict | None = None, spec: dict | None = None, path: str = EXPLAIN):
    """A multipart request: `image` parts of the named inputs, plain fields, and a `spec` file part."""

    def build(i: Inputs) -> Built:
        files = [("image", (n, i.files[n], "image/png")) for n in names]
        if spec is not None:
            files.append(("spec", ("spec.json", json.dumps(spec).encode(), "application/json")))
        return "POST", path, {"files": files, "data": data}

    return build


def chunked(body: bytes) -> Iterator[bytes]:
    """A body without Content-Length: the server learns its size only by reading it."""
    for start in range(0, len(body), 2**16):
        yield body[start : start + 2**16]


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header (and a tiny IDAT) that claims width x height RGB pixels: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def encoded(pixels: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def inputs(photos) -> Inputs:
    small = np.full((8, 8, 3), 128, np.uint8)
    files = {
        "truncated.png": photos["flower.png"].data[: len(photos["flower.png"].data) // 2],
        "truncated.jpg": photos["china.jpg"].data[: len(photos["china.jpg"].data) * 6 // 10],
        "truncated.webp": photos["chelsea.webp"].data[: len(photos["chelsea.webp"].data) // 2],
        "header-only.png": photos["flower.png"].data[:33],
        "text.txt": b"hello, this is not an image",
        "image.pcx": encoded(small, "PCX"),
        "image.tga": encoded(small, "TGA"),
        "bomb.png": png_claiming(100_000, 100_000),
        "too-many-pixels.png": encoded(np.zeros((1001, 2000, 3), np.uint8), "PNG"),  # 2.002 M > 2 M
        "too-many-bytes.png": b"\0" * (2 * 2**20 + 1),
        "big-part.bin": b"\0" * (3 * 2**19),  # 1.5 MiB: each under the image limit, three over the body limit
        "good.jpg": photos["chelsea.jpg"].data,
    }
    return Inputs(good=photos["chelsea.jpg"].b64, files=files)


def multipart_over_the_body_limit(chunks: bool) -> Callable[[Inputs], Built]:
    def build(i: Inputs) -> Built:
        files = [("image", ("big.bin", i.files["big-part.bin"], "image/png"))] * 3
        body, content_type = encode_multipart(files)
        return (
            "POST",
            EXPLAIN,
            {"content": chunked(body) if chunks else body, "headers": {"content-type": content_type}},
        )

    return build


def encode_multipart(files: list) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://testserver/", files=files)
    return request.read(), request.headers["content-type"]


def json_over_the_body_limit(chunks: bool) -> Callable[[Inputs], Built]:
    def build(i: Inputs) -> Built:
        body = b'{"images": ["' + b"A" * (4 * 2**20) + b'"]}'
        return "POST", EXPLAIN, {"content": chunked(body) if chunks else body, "headers": JSON}

    return build


JSON = {"content-type": "application/json"}
IG = "integrated_gradients"

CORPUS = [
    # Unknown names.
    Bad("unknown model: explain", 404, "unknown_model", explain("/v1/models/nope/explain"), "model"),
    Bad("unknown model: predict", 404, "unknown_model", explain("/v1/models/nope/predict"), "model"),
    Bad("unknown model: info", 404, "unknown_model", lambda i: ("GET", "/v1/models/nope", {}), "model"),
    Bad("path-like model name", 404, "not_found", explain("/v1/models/../../etc/explain")),
    Bad("unknown method", 404, "unknown_method", explain(method="lime"), "method.name"),
    Bad("unknown method in an object", 404, "unknown_method", explain(method={"name": "shap"}), "method.name"),
    Bad("unknown path", 404, "not_found", lambda i: ("GET", "/v3/models", {})),  # /v2 is the v2 protocol
    Bad("GET on explain", 405, "method_not_allowed", lambda i: ("GET", EXPLAIN, {})),
    # Method parameters.
    Bad("method without a name", 422, "invalid_parameter", explain(method={"steps": 4}), "method.name"),
    Bad("method an empty object", 422, "invalid_parameter", explain(method={}), "method.name"),
    Bad("method an empty name", 422, "invalid_parameter", explain(method=""), "method.name"),
    Bad("method with an empty name", 422, "invalid_parameter", explain(method={"name": ""}), "method.name"),
    Bad("method name not a string", 422, "invalid_parameter", explain(method={"name": 3}), "method.name"),
    Bad("method is a number", 422, "invalid_input", explain(method=5), ANY),
    Bad(
        "unknown parameter", 422, "invalid_parameter", explain(method={"name": "gradient", "steps": 3}), "method.steps"
    ),
    Bad("steps zero", 422, "invalid_parameter", explain(method={"name": IG, "steps": 0}), "method.steps"),
    Bad("steps over the schema", 422, "invalid_parameter", explain(method={"name": IG, "steps": 5000}), "method.steps"),
    Bad(
        "steps over the pass limit",
        422,
        "invalid_parameter",
        explain(method={"name": IG, "steps": 199}),
        "method.steps",
    ),
    Bad("steps not a number", 422, "invalid_parameter", explain(method={"name": IG, "steps": "many"}), "method.steps"),
    Bad(
        "unknown baseline", 422, "invalid_parameter", explain(method={"name": IG, "baseline": "red"}), "method.baseline"
    ),
    Bad(
        "samples over the pass limit",
        422,
        "invalid_parameter",
        explain(method={"name": "smoothgrad", "samples": 200}),
        "method.samples",
    ),
    Bad("noise over 1", 422, "invalid_parameter", explain(method={"name": "smoothgrad", "noise": 2}), "method.noise"),
    Bad(
        "occlusion windows over the pass limit",
        422,
        "invalid_parameter",
        explain(method={"name": "occlusion", "window": 1, "stride": 1}),
        "method.stride",
    ),
    Bad(
        "unknown layer", 422, "invalid_parameter", explain(method={"name": "gradcam", "layer": "nope"}), "method.layer"
    ),
    Bad(
        "non-spatial layer",
        422,
        "invalid_parameter",
        explain(method={"name": "gradcam", "layer": "fc"}),
        "method.layer",
    ),
    # Images.
    Bad("bad base64", 422, "invalid_image", explain(images=lambda i: ["@@not base64@@"]), "images.0"),
    Bad("base64 of text", 422, "invalid_image", explain(images=image("text.txt")), "images.0"),
    Bad("empty image", 422, "invalid_image", explain(images=lambda i: [""]), "images.0"),
    Bad("truncated PNG", 422, "invalid_image", explain(images=image("truncated.png")), "images.0"),
    Bad("truncated JPEG", 422, "invalid_image", explain(images=image("truncated.jpg")), "images.0"),
    Bad("truncated WebP", 422, "invalid_image", explain(images=image("truncated.webp")), "images.0"),
    Bad("PNG header only", 422, "invalid_image", explain(images=image("header-only.png")), "images.0"),
    Bad("PCX", 422, "invalid_image", explain(images=image("image.pcx")), "images.0"),
    Bad("TGA", 422, "invalid_image", explain(images=image("image.tga")), "images.0"),
    Bad("bad second image", 422, "invalid_image", explain(images=lambda i: [i.good, i.b64("text.txt")]), "images.1"),
    Bad("data URL of text", 422, "invalid_image", explain(images=lambda i: ["data:image/png;base64,aGVsbG8="]), ANY),
    Bad("decompression bomb", 413, "payload_too_large", explain(images=image("bomb.png")), "images.0"),
    Bad("too many pixels", 413, "payload_too_large", explain(images=image("too-many-pixels.png")), "images.0"),
    Bad("image over the byte limit", 413, "payload_too_large", explain(images=image("too-many-bytes.png")), "images.0"),
    Bad("too many images", 422, "invalid_input", explain(images=lambda i: [i.good] * 5), "images"),
    Bad("no images", 422, "invalid_input", explain(images=lambda i: []), "images"),
    Bad(
        "images missing", 422, "invalid_input", lambda i: ("POST", EXPLAIN, {"json": {"method": "gradient"}}), "images"
    ),
    Bad("images not strings", 422, "invalid_input", explain(images=lambda i: [1, 2]), ANY),
    # Bodies.
    Bad("body not JSON", 422, "invalid_input", raw(b"{images: [", "application/json")),
    Bad("body a JSON array", 422, "invalid_input", raw(b"[1, 2]", "application/json")),
    Bad("body empty", 422, "invalid_input", raw(b"", "application/json")),
    Bad("body deeply nested", 422, "invalid_input", raw(b"[" * 100_000, "application/json")),
    Bad("body not UTF-8", 422, "invalid_input", raw(b'{"images": ["\xff\xfe"]}', "application/json")),
    Bad("unknown field", 422, "invalid_input", explain(colour="red"), "colour"),
    Bad("text/plain", 415, "unsupported_media_type", raw(b"hello", "text/plain")),
    Bad("no content type", 415, "unsupported_media_type", raw(b"{}", None)),
    Bad("form-urlencoded", 415, "unsupported_media_type", raw(b"method=gradient", "application/x-www-form-urlencoded")),
    Bad("Content-Length over the limit", 413, "payload_too_large", json_over_the_body_limit(chunks=False)),
    Bad("chunked JSON over the limit", 413, "payload_too_large", json_over_the_body_limit(chunks=True)),
    # Spec fields.
    Bad("top_k zero", 422, "invalid_input", explain(top_k=0), "top_k"),
    Bad("top_k over the limit", 422, "invalid_parameter", explain(top_k=11), "top_k"),
    Bad("unknown objective", 422, "invalid_input", explain(objective="margin"), "objective"),
    Bad("unknown saliency dtype", 422, "invalid_input", explain(output={"saliency": "float64"}), "output.saliency"),
    Bad("unknown reduction", 422, "invalid_input", explain(output={"reduce": "median"}), "output.reduce"),
    Bad("unknown normalization", 422, "invalid_input", explain(output={"normalize": "zscore"}), "output.normalize"),
    Bad("unknown size", 422, "invalid_input", explain(output={"size": "huge"}), "output.size"),
    Bad("unknown colormap", 422, "invalid_input", explain(output={"colormap": "rainbow!"}), "output.colormap"),
    Bad("alpha over 1", 422, "invalid_input", explain(output={"alpha": 1.5}), "output.alpha"),
    Bad("unknown output option", 422, "invalid_input", explain(output={"dpi": 300}), "output.dpi"),
    # Targets.
    Bad("target out of range", 422, "invalid_target", explain(target=4), "target"),
    Bad("target negative", 422, "invalid_input", explain(target=-1), ANY),
    Bad("target fractional", 422, "invalid_input", explain(target=1.5), ANY),
    Bad("target boolean", 422, "invalid_input", explain(target=True), ANY),
    Bad("unknown label", 422, "invalid_target", explain(target="hexagon"), "target"),
    Bad("label on a model without labels", 422, "invalid_target", explain("/v1/models/crop18/explain", target="star")),
    Bad("target list too short", 422, "invalid_target", explain(images=lambda i: [i.good] * 2, target=[1]), "target"),
    Bad("bad entry in a target list", 422, "invalid_target", explain(target=["hexagon"]), "target.0"),
    Bad(
        "second target out of range",
        422,
        "invalid_target",
        explain(images=lambda i: [i.good] * 2, target=[0, 9]),
        "target.1",
    ),
    # A model that failed to load.
    Bad("failed model: explain", 503, "model_unavailable", explain("/v1/models/broken/explain"), "model"),
    Bad("failed model: predict", 503, "model_unavailable", explain("/v1/models/broken/predict"), "model"),
    # Accept: image/png needs one image.
    Bad(
        "PNG for two images",
        422,
        "invalid_input",
        lambda i: ("POST", EXPLAIN, {"json": {"images": [i.good] * 2}, "headers": {"accept": "image/png"}}),
        "images",
    ),
    # Multipart.
    Bad("multipart without images", 422, "invalid_input", parts(spec={"method": "gradient"}), "image"),
    Bad(
        "multipart image as a plain field",
        422,
        "invalid_input",
        lambda i: (
            "POST",
            EXPLAIN,
            {"files": [("spec", ("s.json", b"{}", "application/json"))], "data": {"image": "x"}},
        ),
        "image",
    ),
    Bad("multipart spec not JSON", 422, "invalid_input", parts("good.jpg", data={"spec": "{method"}), "spec"),
    Bad("multipart spec an array", 422, "invalid_input", parts("good.jpg", data={"spec": "[1]"}), "spec"),
    Bad("multipart spec unknown field", 422, "invalid_input", parts("good.jpg", data={"spec": '{"x": 1}'}), "x"),
    Bad("multipart spec with images", 422, "invalid_input", parts("good.jpg", data={"spec": '{"images": []}'})),
    Bad("multipart top_k not a number", 422, "invalid_input", parts("good.jpg", data={"top_k": "many"}), "top_k"),
    Bad("multipart unknown method", 404, "unknown_method", parts("good.jpg", data={"method": "lime"}), "method.name"),
    Bad("multipart bad image", 422, "invalid_image", parts("good.jpg", "text.txt"), "images.1"),
    Bad("multipart truncated image", 422, "invalid_image", parts("truncated.png"), "images.0"),
    Bad("multipart bomb", 413, "payload_too_large", parts("bomb.png"), "images.0"),
    Bad("multipart image over the byte limit", 413, "payload_too_large", parts("too-many-bytes.png"), "images.0"),
    Bad("multipart too many images", 422, "invalid_input", parts(*["good.jpg"] * 5), "images"),
    Bad("multipart far too many files", 422, "invalid_input", parts(*["good.jpg"] * 8)),
    Bad("multipart without a boundary", 422, "invalid_input", raw(b"--x\r\n", "multipart/form-data")),
    Bad("multipart garbage", 422, "invalid_input", raw(b"--x\r\nnonsense", "multipart/form-data; boundary=x")),
    Bad("multipart over the body limit", 413, "payload_too_large", multipart_over_the_body_limit(chunks=False)),
    Bad("chunked multipart over the body limit", 413, "payload_too_large", multipart_over_the_body_limit(chunks=True)),
    Bad("multipart predict without images", 422, "invalid_input", parts(spec={"top_k": 2}, path=PREDICT), "image"),
]


@pytest.mark.parametrize("bad", CORPUS, ids=[bad.id for bad in CORPUS])
def test_bad_request_gets_its_error_and_the_server_carries_on(client, inputs, bad):
    method, path, kwargs = bad.build(inputs)
    response = client.request(method, path, **kwargs)
    assert response.status_code == bad.status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["code"] == bad.code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if bad.field is not ANY:
        assert body["error"]["field"] == bad.field, body
    good = client.post(PREDICT, json={"images": [inputs.good]})
    assert good.status_code == 200, good.text


def test_failed_model_error_gives_the_reason(client, inputs):
    response = client.post("/v1/models/broken/predict", json={"images": [inputs.good]})
    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert (
        message == "model 'broken' failed to load: cannot read weights: "
        "not a tensors-only PyTorch checkpoint or safetensors file"
    )
    assert int(response.headers["retry-after"]) >= 1


def test_errors_do_not_leak_the_request_into_metrics_labels(client):
    client.post("/v1/models/some-client-string/explain", json={"images": ["x"]})
    text = client.get("/metrics").text
    assert "some-client-string" not in text
