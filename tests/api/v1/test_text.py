"""Text models over HTTP: texts in, tokens with offsets and scores out, and clear errors for the wrong kind."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings

TEXT = "The movie was NOT great, <script>alert('x')</script> & boring!"
METHODS = {
    "gradient": {},
    "input_x_gradient": {},
    "integrated_gradients": {"steps": 8},
    "smoothgrad": {"samples": 4, "seed": 3},
    "occlusion": {},
}


@pytest.fixture(scope="module")
def client(tiny_bert, tmp_path_factory):
    config = tmp_path_factory.mktemp("text-api") / "models.toml"
    config.write_text(
        f'[[models]]\nname = "bert"\nkind = "text"\narchitecture = "transformers:{tiny_bert}"\n'
        "num_classes = 2\nmax_length = 40\n\n"
        '[[models]]\nname = "cnn"\narchitecture = "python:service.demo.net:shapes_cnn"\nnum_classes = 4\n'
        "input_size = [32, 32]\n"
    )
    settings = Settings(config=config, device="cpu", max_text_chars=200)
    with TestClient(create_app(settings)) as c:
        yield c


def explain(client, method, texts=(TEXT,), **extra):
    spec = {"name": method, **METHODS.get(method, {})}
    return client.post("/v1/models/bert/explain", json={"texts": list(texts), "method": spec, **extra})


def scores(saliency: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(saliency["data"]), dtype="<f4").reshape(saliency["shape"])


@pytest.mark.parametrize("method", list(METHODS))
def test_every_text_method_scores_every_token_the_model_saw(client, method):
    response = explain(client, method)
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    tokens = result["tokens"]
    assert tokens[0] == {"text": "[CLS]", "start": None, "end": None, "special": True, "score": tokens[0]["score"]}
    assert tokens[-1]["text"] == "[SEP]" and tokens[-1]["special"]
    for token in tokens[1:-1]:
        assert not token["special"] and TEXT[token["start"] : token["end"]] == token["text"]
        assert (
            token["text"].lower()
            in {"the", "movie", "was", "not", "great", ",", "<", ">", "script", "&", "!"}
            | {"boring", "'", "(", ")", "[UNK]", "alert", "x", "/"}
            or token["text"]
        )
    values = scores(result["saliency"])
    assert values.shape == (len(tokens),)
    np.testing.assert_allclose(values, [t["score"] for t in tokens], rtol=1e-6)
    assert np.isfinite(values).all() and np.abs(values).max() == pytest.approx(1.0)  # percentile: [-1, 1]
    assert result["overlay_png"] is None and result["heatmap_png"] is None
    if method == "occlusion":  # special tokens are never occluded
        assert tokens[0]["score"] == 0 and tokens[-1]["score"] == 0


def test_the_html_escapes_the_text_and_keeps_all_of_it(client):
    result = explain(client, "gradient", output={"html": True}).json()["results"][0]
    fragment = result["html"]
    assert "<script>" not in fragment and "&lt;" in fragment and "&amp;" in fragment
    assert fragment.count('<span class="token"') == sum(not t["special"] for t in result["tokens"])
    import html
    import re

    assert html.unescape(re.sub(r"<[^>]+>", "", fragment)) == TEXT


def test_reduce_and_normalize_can_be_chosen(client):
    raw = explain(client, "integrated_gradients", output={"reduce": "sum", "normalize": "none"}).json()
    result = raw["results"][0]
    # Completeness: the signed sums over tokens add up to S(x) - S(baseline), up to the quadrature error.
    assert abs(result["diagnostics"]["completeness_delta"]) < 0.05 * max(1e-3, np.abs(scores(result["saliency"])).sum())
    full = explain(client, "gradient", output={"reduce": "none", "normalize": "none"}).json()["results"][0]
    assert scores(full["saliency"]).ndim == 2 and all(t["score"] is None for t in full["tokens"])


def test_a_batch_of_texts_and_a_label_target(client):
    response = explain(
        client, "gradient", texts=["great film", "the actor was bad and the plot boring"], target="positive"
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [len(r["tokens"]) for r in results] == [4, 10]
    assert all(r["target"]["label"] == "positive" for r in results)
    predicted = client.post("/v1/models/bert/predict", json={"texts": ["great film"], "top_k": 2}).json()
    assert [p["label"] for p in predicted["results"][0]["predictions"]] in (
        ["negative", "positive"],
        ["positive", "negative"],
    )


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"texts": [TEXT], "method": "gradcam"}, 422, "method.name"),
        ({"texts": [TEXT], "method": "scorecam"}, 422, "method.name"),  # before counting a layer's channels
        ({"texts": [TEXT], "method": "eigencam"}, 422, "method.name"),
        ({"texts": [TEXT], "method": {"name": "integrated_gradients", "baseline": "black"}}, 422, "method.baseline"),
        ({"images": ["aGVsbG8="]}, 422, "images"),
        ({"texts": ["   "]}, 422, "texts.0"),
        ({"texts": ["x" * 201]}, 413, "texts.0"),
        ({"texts": ["a," * 60]}, 422, "texts.0"),  # 120 characters, 122 tokens: over max_length
        ({"texts": [TEXT], "images": ["aGVsbG8="]}, 422, "images"),
        ({}, 422, "images"),
    ],
)
def test_wrong_inputs_for_a_text_model_get_a_clear_error(client, body, status, field):
    response = client.post("/v1/models/bert/explain", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"] == field


def test_texts_for_an_image_model_are_refused(client):
    response = client.post("/v1/models/cnn/explain", json={"texts": [TEXT]})
    assert response.status_code == 422 and response.json()["error"]["field"] == "texts"
    assert "send `images`" in response.json()["error"]["message"]


def test_models_and_methods_say_what_takes_texts(client):
    info = client.get("/v1/models/bert").json()
    assert (info["kind"], info["input_size"], info["max_length"], info["labels"]) == ("text", None, 40, True)
    assert info["architecture"].startswith("transformers:") and "/" not in info["architecture"]
    methods = {m["name"]: m for m in client.get("/v1/methods").json()}
    assert methods["gradcam"]["capabilities"]["modalities"] == ["image", "detection"]
    assert set(methods["integrated_gradients"]["capabilities"]["modalities"]) == {
        "image",
        "text",
        "detection",
        "causal_lm",
    }
    assert methods["integrated_gradients"]["text_parameters"]["properties"]["baseline"]["default"] == "pad"


def test_faithfulness_of_token_maps(client):
    """Deletion and insertion over the text's own tokens: steps + 1 scores each, the AUCs in [0, 1], and a
    method whose scores the model follows deletes faster than a random order (occlusion measures exactly
    what deleting one token does)."""
    body = {"metrics": ["deletion", "insertion"], "steps": 4, "seed": 1}
    r = explain(client, "gradient", texts=(TEXT, "fine"), evaluate=body)
    assert r.status_code == 200, r.text
    for result in r.json()["results"]:
        for metric in ("deletion", "insertion"):
            measured = result["faithfulness"][metric]
            assert len(measured["curve"]) == 5
            assert 0.0 <= measured["auc"] <= 1.0 and 0.0 <= measured["random_auc"] <= 1.0
    # A one-token text moves its token at the first step whatever the ranking: map and random agree.
    short = r.json()["results"][1]["faithfulness"]["deletion"]
    assert short["auc"] == pytest.approx(short["random_auc"], abs=1e-6)
