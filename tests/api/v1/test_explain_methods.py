"""Several methods in one explain request: the same maps as one request per method, passes shared."""

from __future__ import annotations

import numpy as np
import pytest

from service.explainers import default_registry

REGISTRY = default_registry()
METHODS = [
    "gradient",
    "input_x_gradient",
    {"name": "gradcam"},
    {"name": "gradcam_pp", "layer": "layer3"},
    {"name": "integrated_gradients", "steps": 4},
    {"name": "smoothgrad", "samples": 3, "seed": 5},
    {"name": "occlusion", "window": 16, "stride": 16},
    "eigencam",  # forward-only, beside methods with gradients (Score-CAM: test_forward_only_cams.py)
]
OUTPUT = {"saliency": "float32", "heatmap": True, "overlay": True}


def without_timing(body: dict) -> dict:
    return {key: value for key, value in body.items() if key != "timing_ms"}


def test_each_explanation_equals_the_single_method_response(explain_json, photos, as_array, open_png):
    images = [photos["chelsea.jpg"].b64, photos["flower.png"].b64]
    common = {"target": ["predicted", 2], "objective": "probability", "output": OUTPUT, "top_k": 3}
    multi = explain_json(*images, methods=METHODS, **common)
    assert len(multi["methods"]) == len(METHODS)
    for m, spec in enumerate(METHODS):
        single = explain_json(*images, method=spec, **common)
        echo = multi["methods"][m]
        assert {k: v for k, v in echo.items() if k != "layer"} == {
            k: v for k, v in single["method"].items() if k != "layer"
        }
        if "layer" in echo:  # the layer each CAM method used, even when the request left it out
            assert echo["layer"] == (single["method"]["layer"] or "layer4")
        for multi_result, single_result in zip(multi["results"], single["results"], strict=True):
            assert multi_result["predictions"] == single_result["predictions"]
            assert multi_result["target"] == single_result["target"]
            explanation = multi_result["explanations"][m]
            assert explanation["method"] == echo
            for key in ("saliency", "heatmap_png", "overlay_png", "diagnostics"):
                if key == "diagnostics":
                    got = {k: v for k, v in explanation[key].items() if k != "completeness_delta"}
                    want = {k: v for k, v in single_result[key].items() if k != "completeness_delta"}
                    assert got == want
                    if "completeness_delta" in want:
                        assert explanation[key]["completeness_delta"] == pytest.approx(
                            single_result[key]["completeness_delta"], rel=1e-3, abs=1e-4
                        )
                elif key == "saliency":
                    # Rows share passes with other methods' rows here: batch composition may move the last bits.
                    np.testing.assert_allclose(
                        as_array(explanation[key]), as_array(single_result[key]), rtol=1e-4, atol=1e-5
                    )
                else:
                    # The same last bits through a colormap: a level or three where jet's ramps are steep.
                    a, b = (np.asarray(open_png(r[key]), dtype=int) for r in (explanation, single_result))
                    assert a.shape == b.shape and np.abs(a - b).max() <= 3, (spec, key)


def test_gradient_and_cam_methods_share_one_pass(client, photos):
    before = client.get("/metrics").text
    body = {"images": [photos["chelsea.jpg"].b64], "methods": ["gradient", "input_x_gradient", "gradcam", "gradcam_pp"]}
    response = client.post("/v1/models/shapes18/explain", json=body)
    assert response.status_code == 200, response.text
    after = client.get("/metrics").text

    def backward_rows(text: str) -> float:
        lines = [ln for ln in text.splitlines() if ln.startswith("saliency_rows_total") and 'kind="backward"' in ln]
        return float(lines[0].split()[-1]) if lines else 0.0

    assert backward_rows(after) - backward_rows(before) == 1, "four methods, one image: one forward+backward"


@pytest.mark.parametrize(
    "fields",
    [{"method": "gradient", "methods": ["gradcam"]}, {"methods": []}, {"methods": ["gradient"] * 9}],
    ids=["both", "empty", "too-many"],
)
def test_method_or_methods(client, photos, fields):
    response = client.post("/v1/models/shapes18/explain", json={"images": [photos["chelsea.jpg"].b64], **fields})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"
    assert response.json()["error"]["field"] in ("method", "methods")


def test_an_unknown_method_in_the_list_names_its_place(client, photos):
    body = {"images": [photos["chelsea.jpg"].b64], "methods": ["gradient", {"name": "nope"}]}
    response = client.post("/v1/models/shapes18/explain", json=body)
    assert response.status_code == 404 and response.json()["error"]["field"] == "methods.1.name"


def test_without_method_or_methods_it_is_one_gradient_as_before(explain_json, photos):
    body = explain_json(photos["chelsea.jpg"].b64)
    assert body["method"] == {"name": "gradient"} and "saliency" in body["results"][0]


def test_single_method_responses_keep_their_shape(explain_json, photos):
    body = explain_json(photos["chelsea.jpg"].b64, method="gradcam")
    assert set(body) == {"model", "method", "objective", "results", "timing_ms"}
    fields = {"predictions", "target", "saliency", "overlay_png", "heatmap_png", "diagnostics", "tokens", "html"}
    assert set(body["results"][0]) == fields | {"faithfulness"}
    assert body["results"][0]["tokens"] is None and body["results"][0]["html"] is None  # text models' fields
    assert body["results"][0]["faithfulness"] is None  # only with `evaluate`
    assert body["method"] == {"name": "gradcam", "layer": "layer4"}  # the layer actually used


def test_multipart_takes_methods_in_the_spec_part(client, photos):
    files = [("image", ("a.jpg", photos["chelsea.jpg"].data, "image/jpeg"))]
    response = client.post(
        "/v1/models/shapes18/explain", files=files, data={"spec": '{"methods": ["gradient", "gradcam"]}'}
    )
    assert response.status_code == 200, response.text
    assert [e["method"]["name"] for e in response.json()["results"][0]["explanations"]] == ["gradient", "gradcam"]
