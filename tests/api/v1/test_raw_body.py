"""One image as the whole body (Content-Type: image/...), its spec in the query string, as TorchServe takes it;
and what an overlay PNG says about itself in its headers."""

from __future__ import annotations

import io
import json
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.main import create_app
from service.settings import Settings

EXPLAIN = "/v1/models/shapes18/explain"
PREDICT = "/v1/models/shapes18/predict"


def without_timing(response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    body.pop("timing_ms")
    return body


def encoded(photo, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(photo.data)).convert("RGB").resize((120, 80)).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "fmt", "kind"),
    [
        ("chelsea.jpg", None, "image/jpeg"),
        ("flower.png", None, "image/png"),
        ("chelsea.webp", None, "image/webp"),
        ("china.jpg", "GIF", "image/gif"),
        ("china.jpg", "BMP", "image/bmp"),
        ("china.jpg", "TIFF", "image/tiff"),
    ],
)
def test_a_raw_image_explains_as_the_same_multipart_request(client, photos, name, fmt, kind):
    data = photos[name].data if fmt is None else encoded(photos[name], fmt)
    raw = client.post(f"{EXPLAIN}?method=gradcam&target=1&top_k=2", content=data, headers={"content-type": kind})
    form = client.post(
        EXPLAIN, files=[("image", ("x", data, kind))], data={"method": "gradcam", "target": "1", "top_k": "2"}
    )
    assert without_timing(raw) == without_timing(form)
    body = raw.json()
    assert body["results"][0]["target"]["index"] == 1 and len(body["results"][0]["predictions"]) == 2
    assert body["method"] == {"name": "gradcam", "layer": "layer4"}


def test_json_valued_parameters_and_the_spec_parameter(client, photos):
    photo = photos["chelsea.jpg"]
    spec = {"method": {"name": "integrated_gradients", "steps": 4}, "output": {"saliency": "uint8"}, "top_k": 3}
    by_json = without_timing(client.post(EXPLAIN, json={"images": [photo.b64], **spec}))
    query = {key: json.dumps(value) if isinstance(value, dict) else str(value) for key, value in spec.items()}
    by_params = client.post(EXPLAIN, params=query, content=photo.data, headers={"content-type": "image/jpeg"})
    assert without_timing(by_params) == by_json
    # `spec` holds the same JSON, and wins over a plain parameter.
    by_spec = client.post(
        EXPLAIN,
        params={"top_k": "1", "spec": json.dumps(spec)},
        content=photo.data,
        headers={"content-type": "image/jpeg"},
    )
    assert without_timing(by_spec) == by_json


def test_predict_takes_a_raw_image_too(client, photos):
    photo = photos["flower.png"]
    by_json = without_timing(client.post(PREDICT, json={"images": [photo.b64], "top_k": 2}))
    raw = client.post(f"{PREDICT}?top_k=2", content=photo.data, headers={"content-type": "image/png"})
    assert without_timing(raw) == by_json


@pytest.mark.parametrize(
    ("query", "data", "kind", "status", "field"),
    [
        ("top_k=2&top_k=3", None, "image/png", 422, "top_k"),
        ("top_k=many", None, "image/png", 422, "top_k"),
        ("method=%7B%22name%22", None, "image/png", 422, "method"),  # method={"name"
        ("output=" + "%5B" * 5000, None, "image/png", 422, "output"),  # nested past the JSON parser's bound
        ("spec=%7Bnot+json", None, "image/png", 422, "spec"),
        ('spec={"top_k": "3"}', None, "image/png", 422, "top_k"),  # the spec is JSON, read strictly
        ("colour=red", None, "image/png", 422, "colour"),
        ("images=abc", None, "image/png", 422, "images"),
        ("method=nope", None, "image/png", 404, "method.name"),
        ("", b"", "image/png", 422, "images.0"),
        ("", b"GIF89a not really", "image/gif", 422, "images.0"),
        ("", b"\0" * (4 * 2**20 + 1), "image/png", 413, None),  # over the body limit (4 MiB here)
        ("", b"\0" * (2 * 2**20 + 1), "image/png", 413, "images.0"),  # over the image limit (2 MiB here)
        ("", b"<svg/>", "image/svg+xml", 415, None),
    ],
    ids=[
        "repeated",
        "not-a-number",
        "method-not-json",
        "output-deeply-nested",
        "spec-not-json",
        "spec-strict",
        "unknown-parameter",
        "images-in-the-query",
        "unknown-method",
        "empty",
        "not-an-image",
        "over-the-body-limit",
        "over-the-image-limit",
        "svg",
    ],
)
def test_raw_image_mistakes_are_client_errors(client, photos, query, data, kind, status, field):
    body = photos["flower.png"].data if data is None else data
    response = client.post(f"{EXPLAIN}?{query}", content=body, headers={"content-type": kind})
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"] == field


def test_a_png_answer_says_what_it_shows(client, photos):
    photo = photos["chelsea.jpg"]
    response = client.post(
        f"{EXPLAIN}?method=gradcam&target=2",
        content=photo.data,
        headers={"content-type": "image/jpeg", "accept": "image/png"},
    )
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (photo.width, photo.height)
    target = client.post(EXPLAIN, json={"images": [photo.b64], "method": "gradcam", "target": 2}).json()["results"][0]
    assert response.headers["x-saliency-target"] == "2" == str(target["target"]["index"])
    assert response.headers["x-saliency-label"] == "triangle" == target["target"]["label"]
    assert float(response.headers["x-saliency-probability"]) == target["target"]["probability"]  # every digit
    assert json.loads(response.headers["x-saliency-method"]) == {"name": "gradcam", "layer": "layer4"}


def test_png_headers_of_a_model_without_labels_leave_the_label_out(client, photos):
    response = client.post(
        "/v1/models/crop18/explain",
        content=photos["flower.png"].data,
        headers={"content-type": "image/png", "accept": "image/png"},
    )
    assert response.status_code == 200
    assert "x-saliency-label" not in response.headers and response.headers["x-saliency-method"] == '{"name":"gradient"}'


def test_non_ascii_labels_are_percent_encoded(model_dir, write_config_file, tmp_path, photos):
    labels = ["kruh ●", "čtverec", "三角形", 'hvězda "5"']
    (tmp_path / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    entry = {"name": "shapes18", "architecture": "torchvision:resnet18", "num_classes": 4, "input_size": [64, 64]}
    entry |= {"weights": str(model_dir / "resnet18.pt"), "labels": "labels.txt"}
    settings = Settings(config=write_config_file(tmp_path, "models.toml", entry), device="cpu")
    with TestClient(create_app(settings)) as client:
        for index, label in enumerate(labels):
            response = client.post(
                f"{EXPLAIN}?target={index}",
                content=photos["flower.png"].data,
                headers={"content-type": "image/png", "accept": "image/png"},
            )
            header = response.headers["x-saliency-label"]
            assert header.isascii() and unquote(header) == label


def test_browsers_may_read_the_png_headers_across_origins(make_client, photos):
    origin = "https://dash.example.com"
    with make_client(cors_origins=[origin]) as client:
        response = client.post(
            EXPLAIN,
            content=photos["flower.png"].data,
            headers={"content-type": "image/png", "accept": "image/png", "origin": origin},
        )
        assert response.status_code == 200
        exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
        assert {"x-saliency-target", "x-saliency-label", "x-saliency-probability", "x-saliency-method"} <= exposed
