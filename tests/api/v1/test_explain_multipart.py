"""POST /v1/models/{name}/explain (and /predict) with multipart/form-data: `image` file parts and a `spec`."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

EXPLAIN = "/v1/models/shapes18/explain"


def image_parts(*photos) -> list[tuple]:
    kinds = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
    return [("image", (p.name, p.data, kinds[p.name.rsplit(".", 1)[1]])) for p in photos]


def test_image_parts_with_a_spec_part(client, photos, as_array):
    spec = {
        "method": {"name": "integrated_gradients", "steps": 4},
        "target": [1, "star"],
        "top_k": 2,
        "output": {"saliency": "uint8"},
    }
    response = client.post(
        EXPLAIN, files=image_parts(photos["china.jpg"], photos["chelsea.webp"]), data={"spec": json.dumps(spec)}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"]["name"] == "integrated_gradients" and body["method"]["steps"] == 4
    assert [r["target"]["index"] for r in body["results"]] == [1, 3]
    for result in body["results"]:
        assert len(result["predictions"]) == 2
        assert as_array(result["saliency"]).dtype == np.uint8
        assert "completeness_delta" in result["diagnostics"]


def test_spec_may_also_be_a_file_part(client, photos):
    spec = ("spec.json", json.dumps({"method": "gradcam", "top_k": 1}).encode(), "application/json")
    response = client.post(EXPLAIN, files=[*image_parts(photos["chelsea.jpg"]), ("spec", spec)])
    assert response.status_code == 200, response.text
    assert response.json()["method"] == {"name": "gradcam", "layer": "layer4"}
    assert len(response.json()["results"][0]["predictions"]) == 1


def test_plain_form_fields_set_method_and_top_k(client, photos):
    response = client.post(EXPLAIN, files=image_parts(photos["chelsea.jpg"]), data={"method": "gradcam", "top_k": "3"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == {"name": "gradcam", "layer": "layer4"}  # the layer actually used
    assert len(body["results"][0]["predictions"]) == 3


def test_the_spec_part_wins_over_a_plain_field(client, photos):
    response = client.post(
        EXPLAIN,
        files=image_parts(photos["chelsea.jpg"]),
        data={"spec": json.dumps({"method": "gradient"}), "method": "gradcam"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["method"]["name"] == "gradient"


def test_multipart_and_json_give_the_same_map(client, explain_json, photos, as_array):
    photo = photos["flower.png"]
    output = {"size": "original", "reduce": "none"}
    response = client.post(EXPLAIN, files=image_parts(photo), data={"spec": json.dumps({"output": output})})
    assert response.status_code == 200, response.text
    (by_json,) = explain_json(photo.b64, output=output)["results"]
    (by_multipart,) = response.json()["results"]
    assert by_multipart["saliency"]["shape"] == [3, photo.height, photo.width]
    np.testing.assert_array_equal(as_array(by_multipart["saliency"]), as_array(by_json["saliency"]))
    assert by_multipart["predictions"] == by_json["predictions"]


def test_each_format_maps_back_to_its_own_size(client, photos, open_png):
    uploads = [photos["china.jpg"], photos["flower.png"], photos["chelsea.webp"]]
    spec = {"output": {"size": "original", "overlay": True}}
    response = client.post(EXPLAIN, files=image_parts(*uploads), data={"spec": json.dumps(spec)})
    assert response.status_code == 200, response.text
    for result, photo in zip(response.json()["results"], uploads, strict=True):
        assert result["saliency"]["shape"] == [photo.height, photo.width]
        assert open_png(result["overlay_png"]).size == (photo.width, photo.height)


def test_accept_png_returns_the_overlay_png(client, photos):
    photo = photos["chelsea.webp"]
    response = client.post(
        EXPLAIN, files=image_parts(photo), data={"method": "gradcam"}, headers={"Accept": "image/png"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert (image.format, image.size, image.mode) == ("PNG", (photo.width, photo.height), "RGB")


def test_predict_accepts_multipart_too(client, photos):
    response = client.post(
        "/v1/models/shapes18/predict", files=image_parts(photos["china.jpg"], photos["flower.png"]), data={"top_k": "2"}
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [len(r["predictions"]) for r in results] == [2, 2]
