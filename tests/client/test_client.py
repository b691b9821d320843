"""service.client against a live server (the demo models, with an API key): every input kind, maps equal to
the raw HTTP JSON, overlays as PIL images, texts with tokens, progress, the async client, and errors."""

from __future__ import annotations

import asyncio
import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image
from saliency_client import AsyncClient, Client, ServiceError

from service.demo import shapes

RAW_DTYPES = {"float32": "<f4", "float16": "<f2", "uint8": "u1"}
TEXT = "the kettle is not great, posted by mike"


@pytest.fixture(scope="module")
def client(demo_server):
    with Client(demo_server.url, demo_server.api_key) as client:
        yield client


@pytest.fixture(scope="module")
def raw(demo_server):
    """Plain httpx with the key: the JSON API as any HTTP client sees it."""
    headers = {"Authorization": f"Bearer {demo_server.api_key}"}
    with httpx.Client(base_url=demo_server.url, headers=headers, timeout=120) as http:
        yield lambda path, body: http.post(path, json=body).raise_for_status().json()


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return shapes.generate(1, seed=3).images[0]  # uint8, 96 x 96 x 3


@pytest.fixture
def image_kinds(tmp_path, pixels):
    path = tmp_path / "shape.png"
    Image.fromarray(pixels).save(path)
    return {"path": str(path), "bytes": path.read_bytes(), "PIL": Image.fromarray(pixels), "numpy": pixels}


def b64(pixels: np.ndarray) -> str:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def raw_array(encoded: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(encoded["data"]), RAW_DTYPES[encoded["dtype"]]).reshape(encoded["shape"])


@pytest.mark.parametrize("kind", ["path", "bytes", "PIL", "numpy"])
def test_predict_takes_every_input_kind(client, raw, image_kinds, pixels, kind):
    answer = client.predict("shapes", image_kinds[kind], top_k=3)
    expected = raw("/v1/models/shapes/predict", {"images": [b64(pixels)], "top_k": 3})["results"][0]["predictions"]
    assert [vars(p) for p in answer.predictions[0]] == expected
    assert answer.model == "shapes" and len(answer.request_id) == 32


@pytest.mark.parametrize("kind", ["path", "bytes", "PIL", "numpy"])
def test_explain_takes_every_input_kind(client, raw, image_kinds, pixels, kind):
    answer = client.explain("shapes", image_kinds[kind], method="gradcam", target=1)
    body = raw("/v1/models/shapes/explain", {"images": [b64(pixels)], "method": "gradcam", "target": 1})
    result = answer.results[0]
    assert result.target.index == 1 and vars(result.target) == body["results"][0]["target"]
    assert np.array_equal(result.explanation.saliency, raw_array(body["results"][0]["saliency"]))
    assert answer.method == body["method"] == {"name": "gradcam", "layer": "block4"}


@pytest.mark.parametrize(
    "output",
    [
        {"saliency": "float32"},
        {"saliency": "float16", "normalize": "none"},
        {"saliency": "uint8", "normalize": "percentile"},
        {"saliency": "float32", "reduce": "none", "size": "original"},
    ],
)
def test_maps_equal_the_raw_json_in_every_dtype(client, raw, pixels, output):
    big = np.asarray(Image.fromarray(pixels).resize((120, 80)))
    method = {"name": "integrated_gradients", "steps": 8}
    answer = client.explain("shapes", [pixels, big], method=method, output=output)
    body = raw("/v1/models/shapes/explain", {"images": [b64(pixels), b64(big)], "method": method, "output": output})
    for result, expected in zip(answer.results, body["results"], strict=True):
        saliency, encoded = result.explanation.saliency, expected["saliency"]
        assert saliency.dtype == np.dtype(output["saliency"]) and list(saliency.shape) == encoded["shape"]
        assert np.array_equal(saliency, raw_array(encoded))
        assert result.explanation.saliency_range == (encoded["min"], encoded["max"])
        assert result.explanation.diagnostics == expected["diagnostics"]
    assert answer.results[1].explanation.saliency.shape[-2:] == ((80, 120) if "size" in output else (96, 96))


def test_overlays_and_heatmaps_are_pil_images(client, raw, pixels):
    big = np.asarray(Image.fromarray(pixels).resize((120, 80)))
    output = {"overlay": True, "heatmap": True, "colormap": "viridis"}
    result = client.explain("shapes", big, method="gradient", output=output).results[0].explanation
    body = raw("/v1/models/shapes/explain", {"images": [b64(big)], "method": "gradient", "output": output})
    expected = body["results"][0]
    assert isinstance(result.overlay, Image.Image) and result.overlay.size == (120, 80)  # the original size
    assert isinstance(result.heatmap, Image.Image) and result.heatmap.size == (96, 96)
    for image, png in [(result.overlay, expected["overlay_png"]), (result.heatmap, expected["heatmap_png"])]:
        assert np.array_equal(np.asarray(image), np.asarray(Image.open(io.BytesIO(base64.b64decode(png)))))
    assert result.overlay_png == base64.b64decode(expected["overlay_png"])


def test_several_methods_with_faithfulness(client, raw, pixels):
    methods = ["gradient", {"name": "occlusion", "window": 16, "stride": 16}]
    evaluate = {"metrics": ["deletion", "insertion"], "steps": 4}
    result = client.explain("shapes", pixels, methods=methods, evaluate=evaluate).results[0]
    body = raw("/v1/models/shapes/explain", {"images": [b64(pixels)], "methods": methods, "evaluate": evaluate})
    expected = body["results"][0]["explanations"]
    assert [e.method["name"] for e in result.explanations] == ["gradient", "occlusion"]
    for explanation, raw_one in zip(result.explanations, expected, strict=True):
        assert np.array_equal(explanation.saliency, raw_array(raw_one["saliency"]))
        assert {k: vars(v) for k, v in explanation.faithfulness.items()} == raw_one["faithfulness"]
    with pytest.raises(ValueError, match="2 explanations"):
        _ = result.explanation


def test_text_models_give_tokens_with_their_scores(client, raw):
    spec = {"method": "integrated_gradients", "output": {"html": True}}
    answer = client.explain("reviews", texts=TEXT, **spec)
    body = raw("/v1/models/reviews/explain", {"texts": [TEXT], **spec})
    explanation = answer.results[0].explanation
    assert [vars(t) for t in explanation.tokens] == body["results"][0]["tokens"]
    words = [t for t in explanation.tokens if not t.special]
    assert [TEXT[t.start : t.end] for t in words] == [t.text for t in words] and "mike" in [t.text for t in words]
    assert explanation.saliency.shape == (len(explanation.tokens),)
    assert [t.score for t in explanation.tokens] == explanation.saliency.tolist()
    assert explanation.html == body["results"][0]["html"] and "kettle" in explanation.html
    predicted = client.predict("reviews", texts=[TEXT, "the kettle is great"], top_k=2)
    expected = raw("/v1/models/reviews/predict", {"texts": [TEXT, "the kettle is great"], "top_k": 2})["results"]
    assert [[vars(p) for p in top] for top in predicted.predictions] == [r["predictions"] for r in expected]


def test_progress_counts_up_to_the_total_and_the_answer_is_the_plain_one(client, pixels):
    calls: list[tuple[int, int]] = []
    method = {"name": "integrated_gradients", "steps": 300}
    streamed = client.explain("shapes", pixels, method=method, progress=lambda done, total: calls.append((done, total)))
    plain = client.explain("shapes", pixels, method=method)
    dones = [done for done, _ in calls]
    assert len(calls) >= 3 and dones == sorted(set(dones)), calls  # strictly increasing
    assert {total for _, total in calls} == {302} and calls[-1] == (302, 302)
    # Pass sizes follow measured pass times (engine/pacing.py), so the two runs may batch the 302 rows
    # differently: equal up to the float rounding of another batch size, not bit for bit.
    a, b = streamed.results[0].explanation.saliency, plain.results[0].explanation.saliency
    assert np.allclose(a, b, rtol=1e-4, atol=1e-5 * float(np.abs(b).max()))
    assert streamed.method == plain.method


def test_async_client(demo_server, client, pixels):
    calls: list[tuple[int, int]] = []

    async def both():
        async with AsyncClient(demo_server.url, demo_server.api_key) as aclient:
            method = {"name": "occlusion", "window": 16, "stride": 4}
            return await asyncio.gather(
                aclient.explain("shapes", pixels, method=method, progress=lambda d, t: calls.append((d, t))),
                aclient.predict("shapes", [pixels, pixels]),
            )

    explained, predicted = asyncio.run(both())
    sync = client.explain("shapes", pixels, method={"name": "occlusion", "window": 16, "stride": 4})
    # The predict's rows may share the occlusion's passes: another batch, so float32 rounding may differ.
    np.testing.assert_allclose(
        explained.results[0].explanation.saliency, sync.results[0].explanation.saliency, atol=1e-5
    )
    assert calls and calls[-1][0] == calls[-1][1] == 442  # 21 x 21 windows + the image's own forward
    alone = client.predict("shapes", pixels).predictions[0]
    for top in predicted.predictions:  # a batch of two: equal up to float32 rounding
        assert [p.index for p in top] == [p.index for p in alone]
        assert [p.logit for p in top] == pytest.approx([p.logit for p in alone], abs=1e-5)


def test_server_errors_carry_code_status_field_and_request_id(client, pixels):
    with pytest.raises(ServiceError) as raised:
        client.explain("nope", pixels, request_id="client-test-1")
    error = raised.value
    assert (error.code, error.status, error.field, error.request_id) == ("unknown_model", 404, "model", "client-test-1")
    assert "unknown model 'nope'" in error.message and str(error).startswith("unknown_model: unknown model 'nope'")
    with pytest.raises(ServiceError) as raised:
        client.explain("shapes", pixels, method={"name": "occlusion", "window": 0}, progress=lambda d, t: None)
    assert (raised.value.code, raised.value.status, raised.value.field) == ("invalid_parameter", 422, "method.window")


def test_an_error_during_the_stream(client, pixels):
    # The deadline passes mid-explanation: an `error` event (or a plain 504 if no progress came first).
    method = {"name": "integrated_gradients", "steps": 1000}
    with pytest.raises(ServiceError) as raised:
        client.explain("shapes", pixels, method=method, timeout_ms=300, progress=lambda d, t: None)
    assert (raised.value.code, raised.value.status) == ("deadline_exceeded", 504)
    assert raised.value.request_id


def test_a_missing_or_wrong_api_key(demo_server, pixels):
    for key in (None, "not-the-key"):
        with Client(demo_server.url, key) as anonymous, pytest.raises(ServiceError) as raised:
            anonymous.predict("shapes", pixels)
        assert (raised.value.code, raised.value.status) == ("unauthorized", 401)
        assert "API key" in raised.value.message and raised.value.request_id


def test_transport_errors_have_their_own_code():
    with socket_port() as port, Client(f"http://127.0.0.1:{port}") as nowhere, pytest.raises(ServiceError) as raised:
        nowhere.models()
    assert raised.value.code == "connection_error" and raised.value.status is None
    assert f"cannot connect to http://127.0.0.1:{port}" in raised.value.message


def test_lists_models_and_methods(client):
    assert [m["name"] for m in client.models()] == [
        "shapes",
        "shapes-watermark",
        "shapes-random-labels",
        "shapes-vit",
        "shapes-vit-watermark",
        "shapes-detector",
        "shapes-detector-watermark",
        "reviews",
        "reviews-shortcut",
        "instructions-lm",
    ]
    assert "integrated_gradients" in [m["name"] for m in client.methods()]


def socket_port():
    """A port nothing listens on: bound (so no one else takes it) but not listening."""
    import contextlib
    import socket

    @contextlib.contextmanager
    def bound():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            yield s.getsockname()[1]

    return bound()


def test_sanity_checks_come_back_as_dataclasses_with_progress(client, raw, pixels):
    seen: list[tuple[int, int]] = []
    checked = client.sanity(
        "shapes", pixels, methods=["gradient", {"name": "gradcam"}], seed=3, progress=lambda d, t: seen.append((d, t))
    )
    body = {"images": [b64(pixels)], "methods": ["gradient", {"name": "gradcam"}], "seed": 3}
    expected = raw("/v1/models/shapes/sanity", body)
    assert checked.test == "model_randomization" and checked.reference_model is None
    assert [r.method for r in checked.results] == [r["method"] for r in expected["results"]]
    for got, want in zip(checked.results, expected["results"], strict=True):
        assert got.steps == want["steps"] and got.verdict == want["verdict"]
        assert got.spearman == pytest.approx(want["spearman"], abs=1e-6)
        assert got.ssim == pytest.approx(want["ssim"], abs=1e-6)
    assert checked.targets[0].index == expected["targets"][0]["index"]
    assert seen and seen[-1][0] == seen[-1][1] == 12  # 2 rows a set (shared), 6 sets
    assert set(checked.verdicts()) == {"gradient", "gradcam"}


def test_a_data_randomization_check_names_its_reference(client, pixels):
    checked = client.sanity(
        "shapes",
        [pixels, pixels],
        methods=["gradient"],
        test="data_randomization",
        reference_model="shapes-random-labels",
    )
    assert checked.reference_model == "shapes-random-labels"
    assert checked.results[0].steps == ["shapes-random-labels"] and len(checked.targets) == 2
    with pytest.raises(ServiceError) as raised:
        client.sanity("shapes", pixels, methods=["gradient"], test="data_randomization")
    assert raised.value.status == 422 and raised.value.field == "reference_model"


def test_the_demo_vit_gives_cam_and_attention_maps(client, raw, pixels):
    """The transformer beside the CNN: the default CAM layer reshaped from tokens, and both attention methods."""
    methods = ["gradcam", "attention_rollout", "attention_relevance"]
    answer = client.explain("shapes-vit", pixels, methods=methods, target=2)
    body = raw("/v1/models/shapes-vit/explain", {"images": [b64(pixels)], "methods": methods, "target": 2})
    explanations = answer.results[0].explanations
    assert explanations[0].method == {"name": "gradcam", "layer": "encoder.layers.encoder_layer_3.ln_1"}
    for explanation, expected in zip(explanations, body["results"][0]["explanations"], strict=True):
        assert explanation.saliency.shape == (96, 96) and explanation.saliency.max() > 0
        assert np.array_equal(explanation.saliency, raw_array(expected["saliency"]))
    other = client.explain("shapes-vit", pixels, method="attention_relevance", target=0).results[0].explanation
    assert not np.array_equal(other.saliency, explanations[2].saliency)  # relevance follows the class
    with pytest.raises(ServiceError, match="no attention probabilities reached") as refused:
        client.explain("shapes", pixels, method="attention_rollout")
    assert refused.value.status == 422
