"""POST /v1/models/{name}/explain (and /predict) with JSON bodies: maps, encodings, sizes, targets, echoes."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pytest
import torch
from explaining import explain
from PIL import Image

from service.codecs.image.decode import decode_image
from service.codecs.image.transforms import to_input
from service.explainers import ExplainContext, PixelSpace, default_registry

REGISTRY = default_registry()
# Parameters small enough for a fast suite; every registered method gets a row.
TINY = {
    "smoothgrad": {"samples": 4, "seed": 1},
    "smoothgrad_sq": {"samples": 4, "seed": 1},
    "vargrad": {"samples": 4, "seed": 1},
    "integrated_gradients": {"steps": 4},
    "occlusion": {"window": 16, "stride": 16},
    "rise": {"masks": 8, "cell": 16, "seed": 1},
    "scorecam": {"layer": "layer1"},  # 64 channels: 65 passes; layer4's 512 are over the tests' limit of 200
}


# The attention methods explain transformers (a resnet has no attention: a 422; tests/api/v1/test_transformers.py).
CNN_METHODS = [
    name
    for name in REGISTRY.names()
    if not REGISTRY.get(name).capabilities.reads_attention and "image" in REGISTRY.get(name).capabilities.modalities
]  # attention methods: tests/api/v1/test_transformers.py; detection-only ones: test_detection.py


@pytest.mark.parametrize("name", CNN_METHODS)
def test_every_method_explains_and_echoes_all_its_parameters(explain_json, photos, as_array, name):
    given = TINY.get(name, {})
    body = explain_json(photos["chelsea.jpg"].b64, method={"name": name, **given})
    assert body["model"] == "shapes18"
    echo = {"name": name, **REGISTRY.get(name).params_model(**given).model_dump()}
    if "layer" in echo and echo["layer"] is None:
        echo["layer"] = "layer4"  # the layer the CAM actually used: the model's default
    assert body["method"] == echo
    assert body["objective"] == "logit"
    (result,) = body["results"]
    array = as_array(result["saliency"])
    assert array.shape == (64, 64) and np.isfinite(array).all()
    assert array.min() >= 0.0 and array.max() <= 1.0
    assert set(body["timing_ms"]) == {"decode", "model", "encode", "total"}


def test_method_as_a_plain_name_echoes_the_defaults(explain_json, photos):
    body = explain_json(photos["chelsea.jpg"].b64, method="gradcam")
    assert body["method"] == {"name": "gradcam", "layer": "layer4"}
    body = explain_json(photos["chelsea.jpg"].b64, method={"name": "integrated_gradients", "steps": 4})
    assert body["method"] == {
        "name": "integrated_gradients",
        "steps": 4,
        "rule": "gauss_legendre",
        "baseline": "black",
        "blur_sigma": 5.0,
        "seed": 0,
    }


def test_default_output_is_a_float32_minmax_map_at_input_size(explain_json, photos, as_array):
    (result,) = explain_json(photos["china.jpg"].b64)["results"]
    saliency = result["saliency"]
    assert (saliency["shape"], saliency["dtype"]) == ([64, 64], "float32")
    assert len(base64.b64decode(saliency["data"])) == 64 * 64 * 4
    array = as_array(saliency)
    assert array.min() == 0.0 and array.max() == 1.0  # both ends attained
    assert (saliency["min"], saliency["max"]) == (float(array.min()), float(array.max()))
    assert result["overlay_png"] is None and result["heatmap_png"] is None
    assert result["diagnostics"] == {}


def test_percentile_normalization_keeps_the_sign_within_minus_one_one(explain_json, photos, as_array):
    output = {"reduce": "sum", "normalize": "percentile"}
    (result,) = explain_json(photos["china.jpg"].b64, output=output)["results"]
    array = as_array(result["saliency"])
    assert array.min() >= -1.0 and array.max() <= 1.0
    assert array.min() < 0.0 < array.max()
    assert np.abs(array).max() == 1.0  # the values above the 99.5th percentile are clipped to +-1


@pytest.mark.parametrize("name", ["china.jpg", "flower.png", "chelsea.webp"])
def test_size_original_gives_the_uploaded_height_and_width(explain_json, photos, as_array, open_png, name):
    photo = photos[name]
    output = {"size": "original", "heatmap": True, "overlay": True}
    (result,) = explain_json(photo.b64, output=output)["results"]
    assert result["saliency"]["shape"] == [photo.height, photo.width]
    array = as_array(result["saliency"])
    assert array.min() >= 0.0 and array.max() <= 1.0
    assert png_size(open_png, result["overlay_png"]) == (photo.width, photo.height)
    assert png_size(open_png, result["heatmap_png"]) == (photo.width, photo.height)


def test_overlay_is_at_the_original_size_even_for_input_size_maps(explain_json, photos, open_png):
    photo = photos["china.jpg"]
    (result,) = explain_json(photo.b64, output={"heatmap": True, "overlay": True})["results"]
    assert png_size(open_png, result["overlay_png"]) == (photo.width, photo.height)
    assert png_size(open_png, result["heatmap_png"]) == (64, 64)


def test_reduce_none_keeps_the_channels(explain_json, photos, as_array):
    photo = photos["chelsea.webp"]
    (result,) = explain_json(photo.b64, output={"reduce": "none"})["results"]
    assert result["saliency"]["shape"] == [3, 64, 64]
    (result,) = explain_json(photo.b64, output={"reduce": "none", "size": "original"})["results"]
    assert result["saliency"]["shape"] == [3, photo.height, photo.width]
    array = as_array(result["saliency"])
    assert array.min() >= 0.0 and array.max() <= 1.0


def test_minmax_map_at_the_original_size_attains_zero_and_one(explain_json, photos, as_array):
    (result,) = explain_json(photos["china.jpg"].b64, output={"size": "original"})["results"]
    array = as_array(result["saliency"])
    assert (array.min(), array.max()) == (0.0, 1.0)


def test_uint8_and_float16_encode_the_same_map(explain_json, photos, as_array):
    image = photos["chelsea.jpg"].b64
    (f32,) = explain_json(image)["results"]
    (f16,) = explain_json(image, output={"saliency": "float16"})["results"]
    (u8,) = explain_json(image, output={"saliency": "uint8"})["results"]
    exact = as_array(f32["saliency"])
    assert f16["saliency"]["dtype"] == "float16" and len(base64.b64decode(f16["saliency"]["data"])) == 64 * 64 * 2
    np.testing.assert_array_equal(as_array(f16["saliency"]), exact.astype(np.float16))
    assert u8["saliency"]["dtype"] == "uint8" and len(base64.b64decode(u8["saliency"]["data"])) == 64 * 64
    quantized = as_array(u8["saliency"])
    np.testing.assert_array_equal(quantized, np.rint(exact * 255).astype(np.uint8))
    assert (quantized.min(), quantized.max()) == (0, 255)


def test_saliency_none_omits_the_array(explain_json, photos):
    (result,) = explain_json(photos["chelsea.jpg"].b64, output={"saliency": "none", "overlay": True})["results"]
    assert result["saliency"] is None and result["overlay_png"]


def test_top_k_predictions_are_sorted_and_labelled(explain_json, photos, labels):
    (result,) = explain_json(photos["china.jpg"].b64, top_k=4)["results"]
    predictions = result["predictions"]
    assert sorted(p["index"] for p in predictions) == [0, 1, 2, 3]
    assert all(p["label"] == labels[p["index"]] for p in predictions)
    probabilities = [p["probability"] for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
    logits = torch.tensor([p["logit"] for p in predictions])
    np.testing.assert_allclose(probabilities, logits.softmax(0).numpy(), rtol=1e-5)
    (result,) = explain_json(photos["china.jpg"].b64, top_k=2)["results"]
    assert result["predictions"] == predictions[:2]


def test_predicted_target_is_the_top_class(explain_json, photos):
    (result,) = explain_json(photos["flower.png"].b64)["results"]
    assert result["target"] == result["predictions"][0]


@pytest.mark.parametrize(("target", "index"), [(3, 3), ("square", 1), (0, 0), ("star", 3)])
def test_one_target_for_every_image_by_index_or_label(explain_json, photos, labels, target, index):
    body = explain_json(photos["china.jpg"].b64, photos["chelsea.jpg"].b64, target=target, top_k=4)
    for result in body["results"]:
        assert result["target"]["index"] == index and result["target"]["label"] == labels[index]
        same_class = next(p for p in result["predictions"] if p["index"] == index)
        assert result["target"] == same_class


def test_a_target_list_gives_one_target_per_image(explain_json, photos, as_array):
    images = [photos["china.jpg"].b64, photos["chelsea.jpg"].b64, photos["china.jpg"].b64]
    body = explain_json(*images, target=[0, "triangle", "predicted"])
    targets = [r["target"] for r in body["results"]]
    assert [t["index"] for t in targets[:2]] == [0, 2]
    assert targets[1]["label"] == "triangle"
    assert targets[2] == body["results"][2]["predictions"][0]
    # The same image explained for different classes gives different maps.
    first, last = (as_array(r["saliency"]) for r in (body["results"][0], body["results"][2]))
    assert targets[2]["index"] == 0 or not np.array_equal(first, last)


def test_results_keep_the_order_of_the_images(explain_json, photos, as_array):
    together = explain_json(photos["china.jpg"].b64, photos["chelsea.webp"].b64)["results"]
    for result, name in zip(together, ["china.jpg", "chelsea.webp"], strict=True):
        (alone,) = explain_json(photos[name].b64)["results"]
        np.testing.assert_allclose(as_array(result["saliency"]), as_array(alone["saliency"]), atol=1e-4)
        assert result["target"]["index"] == alone["target"]["index"]


def test_objective_is_echoed_and_changes_the_map(explain_json, photos, as_array):
    image = photos["china.jpg"].b64
    logit = explain_json(image, target=1)
    probability = explain_json(image, target=1, objective="probability")
    assert probability["objective"] == "probability"
    assert not np.allclose(
        as_array(logit["results"][0]["saliency"]), as_array(probability["results"][0]["saliency"]), atol=1e-3
    )


def test_data_urls_and_plain_base64_give_the_same_answer(explain_json, photos):
    for photo in (photos["china.jpg"], photos["flower.png"], photos["chelsea.webp"]):
        plain, url = (explain_json(image)["results"][0] for image in (photo.b64, photo.data_url))
        assert plain["saliency"] == url["saliency"]


def test_gradcam_takes_a_layer_from_the_model_info(client, explain_json, photos, as_array):
    assert "layer3" in client.get("/v1/models/shapes18").json()["layers"]
    image = photos["china.jpg"].b64
    default = explain_json(image, method="gradcam", target=2)["results"][0]
    layer3 = explain_json(image, method={"name": "gradcam", "layer": "layer3"}, target=2)["results"][0]
    assert not np.array_equal(as_array(default["saliency"]), as_array(layer3["saliency"]))


def test_integrated_gradients_reports_its_completeness_delta(client, explain_json, photos, image_bytes, as_array):
    # delta = sum(attributions) - (S(x) - S(baseline)); the black baseline is what a black image becomes.
    body = explain_json(
        photos["chelsea.jpg"].b64,
        method={"name": "integrated_gradients", "steps": 8},
        target=2,
        output={"reduce": "none", "normalize": "none"},
    )
    (result,) = body["results"]
    attributions = as_array(result["saliency"]).astype(np.float64)
    black = base64.b64encode(image_bytes(np.zeros((64, 64, 3), np.uint8), "PNG")).decode()
    response = client.post("/v1/models/shapes18/predict", json={"images": [black], "top_k": 4})
    baseline_logit = next(p["logit"] for p in response.json()["results"][0]["predictions"] if p["index"] == 2)
    expected = attributions.sum() - (result["target"]["logit"] - baseline_logit)
    assert result["diagnostics"]["completeness_delta"] == pytest.approx(expected, abs=1e-3)


def test_http_gradient_equals_the_engine_on_the_same_input(client, explain_json, photos, as_array):
    photo = photos["flower.png"]
    body = explain_json(photo.b64, target=1, output={"reduce": "none", "normalize": "none"})
    services = client.app.state.services
    loaded = services.pool.get("shapes18")
    picture = decode_image(photo.data, "images.0", 2**24, 10**8)
    x, _ = to_input(picture, loaded.spec)
    ctx = ExplainContext(pixel_space=PixelSpace(loaded.spec.mean, loaded.spec.std), layer=loaded.default_layer)
    explainer = REGISTRY.get("gradient")
    direct = explain(explainer, loaded.module, x[None], torch.tensor([1]), explainer.params_model(), ctx)
    np.testing.assert_allclose(as_array(body["results"][0]["saliency"]), direct.attributions[0].numpy(), rtol=1e-6)
    assert body["results"][0]["target"]["logit"] == pytest.approx(float(direct.logits[0, 1]), rel=1e-6)


def test_accept_png_returns_the_overlay_itself(client, explain_json, photos):
    photo = photos["china.jpg"]
    response = client.post(
        "/v1/models/shapes18/explain",
        json={"images": [photo.b64], "method": "gradcam", "output": {"alpha": 0.3}},
        headers={"Accept": "image/png"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert (image.format, image.size) == ("PNG", (photo.width, photo.height))
    (result,) = explain_json(photo.b64, method="gradcam", output={"alpha": 0.3, "overlay": True})["results"]
    assert response.content == base64.b64decode(result["overlay_png"])


def test_shorter_side_model_maps_back_into_its_center_crop(explain_json, photos, as_array):
    photo = photos["china.jpg"]  # 640 x 427: the model sees the central 427 x 427 square
    (result,) = explain_json(photo.b64, model="crop18", output={"size": "original"})["results"]
    array = as_array(result["saliency"])
    assert array.shape == (427, 640)
    left, right = (640 - 427) / 2, (640 + 427) / 2
    assert not array[:, : math.floor(left)].any() and not array[:, math.ceil(right) :].any()
    assert array[:, math.ceil(left) : math.floor(right)].max() > 0.5
    assert result["target"]["label"] is None  # crop18 has no labels


def test_predict_gives_the_same_predictions_as_explain(client, explain_json, photos):
    image = photos["chelsea.webp"].b64
    response = client.post("/v1/models/shapes18/predict", json={"images": [image, image], "top_k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "shapes18" and len(body["results"]) == 2
    expected = explain_json(image, top_k=3)["results"][0]["predictions"]
    for result in body["results"]:
        assert [p["index"] for p in result["predictions"]] == [p["index"] for p in expected]
        for got, want in zip(result["predictions"], expected, strict=True):
            assert got["probability"] == pytest.approx(want["probability"], rel=1e-4)


def png_size(open_png, b64: str) -> tuple[int, int]:
    return open_png(b64).size
