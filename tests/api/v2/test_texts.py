"""Text classifiers over v2: a BYTES tensor of texts (JSON strings or UTF-8 binary) gives v1's logits, the
tokens the model saw (ids and character offsets, padded with -1), and with the explain parameter v1's
per-token scores; as JSON or binary outputs, and 400s for what does not fit."""

from __future__ import annotations

import base64
import json
import struct

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings

from .outputs import arrays

TEXTS = ["the movie was not great", "loved it , really fun !"]
URL = "/v2/models/bert/infer"


@pytest.fixture(scope="module")
def client(tiny_bert, tmp_path_factory):
    config = tmp_path_factory.mktemp("v2-text") / "models.toml"
    config.write_text(
        f'[[models]]\nname = "bert"\nkind = "text"\narchitecture = "transformers:{tiny_bert}"\n'
        "num_classes = 2\nmax_length = 40\n"
    )
    with TestClient(create_app(Settings(config=config, device="cpu"))) as c:
        yield c


def texts_input(data, shape=None, **fields) -> dict:
    return {"inputs": [{"name": "texts", "datatype": "BYTES", "shape": shape or [len(data)], "data": data}], **fields}


def binary_texts(items: list[bytes], **fields) -> tuple[bytes, dict[str, str]]:
    data = b"".join(struct.pack("<I", len(item)) + item for item in items)
    tensor = {
        "name": "texts",
        "datatype": "BYTES",
        "shape": [len(items)],
        "parameters": {"binary_data_size": len(data)},
    }
    head = json.dumps({"inputs": [tensor], "outputs": [{"name": "logits"}], **fields}).encode()
    return head + data, {"Inference-Header-Content-Length": str(len(head))}


def v1_explain(client, texts, explain: dict) -> dict:
    body = {"texts": texts, **explain}
    response = client.post("/v1/models/bert/explain", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_metadata_lists_the_texts_input_and_the_token_outputs(client):
    body = client.get("/v2/models/bert").json()
    assert body["inputs"] == [{"name": "texts", "datatype": "BYTES", "shape": [-1]}]
    assert body["outputs"] == [
        {"name": "logits", "datatype": "FP32", "shape": [-1, 2]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
        {"name": "token_ids", "datatype": "INT64", "shape": [-1, -1]},
        {"name": "token_offsets", "datatype": "INT64", "shape": [-1, -1, 2]},
        {"name": "scores", "datatype": "FP32", "shape": [-1, -1]},
    ]


def test_texts_give_v1s_logits_as_json_or_binary(client):
    from_json = client.post(URL, json=texts_input(TEXTS)).json()
    assert [o["name"] for o in from_json["outputs"]] == ["logits", "probabilities", "token_ids", "token_offsets"]
    logits = np.float32(from_json["outputs"][0]["data"]).reshape(2, 2)
    v1 = client.post("/v1/models/bert/predict", json={"texts": TEXTS, "top_k": 2}).json()
    for row, result in zip(logits, v1["results"], strict=True):
        for p in result["predictions"]:
            assert row[p["index"]] == pytest.approx(p["logit"], abs=1e-5)
    content, headers = binary_texts([t.encode() for t in TEXTS])
    from_binary = client.post(URL, content=content, headers=headers).json()
    assert from_binary["outputs"][0]["data"] == from_json["outputs"][0]["data"]


def test_token_ids_and_offsets_are_the_tokens_v1_shows(client, tiny_bert):
    from transformers import AutoTokenizer

    texts = ["fun", *TEXTS]  # the shortest first: its row is padded
    _, out = arrays(client.post(URL, json=texts_input(texts)))
    v1 = v1_explain(client, texts, {"method": "gradient"})
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    longest = max(len(r["tokens"]) for r in v1["results"])
    assert out["token_ids"].shape == (3, longest) and out["token_offsets"].shape == (3, longest, 2)
    for i, (text, result) in enumerate(zip(texts, v1["results"], strict=True)):
        expected = tokenizer(text)["input_ids"]
        n = len(result["tokens"])
        assert len(expected) == n and out["token_ids"][i, :n].tolist() == expected
        assert (out["token_ids"][i, n:] == -1).all() and (out["token_offsets"][i, n:] == -1).all()
        for (start, end), token in zip(out["token_offsets"][i, :n].tolist(), result["tokens"], strict=True):
            if token["special"]:
                assert (start, end) == (-1, -1)
            else:
                assert (start, end) == (token["start"], token["end"]) and text[start:end] == token["text"]
    assert out["token_ids"][0, 3:].tolist() == [-1] * (longest - 3)  # "fun" is [CLS] fun [SEP]


@pytest.mark.parametrize(
    "explain",
    [
        {"method": "gradient"},
        {"method": {"name": "integrated_gradients", "steps": 8}, "target": 0},
        {"method": "occlusion", "target": "positive", "output": {"normalize": "none"}},
        {"method": "input_x_gradient", "target": [1, 0], "output": {"reduce": "l2"}},
    ],
    ids=["gradient", "ig-target", "occlusion-label", "ixg-targets-l2"],
)
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_explained_scores_are_v1s(client, explain, binary):
    body = texts_input(TEXTS, parameters={"explain": explain, "binary_data_output": binary})
    response = client.post(URL, json=body)
    assert response.headers["content-type"] == ("application/octet-stream" if binary else "application/json")
    head, out = arrays(response)
    v1 = v1_explain(client, TEXTS, explain)
    assert head["parameters"]["explain"] == {
        "method": v1["method"],
        "objective": "logit",
        "target": [r["target"]["index"] for r in v1["results"]],
    }
    assert out["scores"].dtype == np.float32 and out["scores"].shape == out["token_ids"].shape
    for i, result in enumerate(v1["results"]):
        saliency = result["saliency"]
        expected = np.frombuffer(base64.b64decode(saliency["data"]), "<f4").reshape(saliency["shape"])
        n = len(expected)
        np.testing.assert_allclose(out["scores"][i, :n], expected, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(out["scores"][i, :n], [t["score"] for t in result["tokens"]], rtol=1e-6)
        assert (out["scores"][i, n:] == 0).all()
        for p in result["predictions"]:
            assert out["logits"][i, p["index"]] == pytest.approx(p["logit"], abs=1e-5)


def test_the_explain_parameter_as_a_json_string_and_requested_outputs(client):
    explain = json.dumps({"method": "gradient", "target": 1})
    outputs = [{"name": "scores", "parameters": {"binary_data": True}}, {"name": "token_ids"}]
    head, out = arrays(client.post(URL, json=texts_input(TEXTS, parameters={"explain": explain}, outputs=outputs)))
    assert [o["name"] for o in head["outputs"]] == ["scores", "token_ids"]
    assert head["outputs"][0]["parameters"]["binary_data_size"] == 4 * out["scores"].size
    assert head["parameters"]["explain"]["target"] == [1, 1]


def error(response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
    return response.json()["error"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"outputs": [{"name": "scores"}]}, "outputs.0.name: output 'scores' needs the `explain` parameter"),
        ({"outputs": [{"name": "saliency"}]}, "model 'bert' has no output 'saliency'"),
        (
            {"parameters": {"explain": {"method": "gradient", "output": {"reduce": "none"}}}},
            "parameters.explain.output.reduce: a text's scores are one per token",
        ),
        ({"parameters": {"explain": {"method": "gradcam"}}}, "parameters.explain.method.name: gradcam does not"),
        ({"parameters": {"explain": {"target": 7}}}, "parameters.explain.target"),
        ({"parameters": {"explain": {"include_generated": True}}}, "parameters.explain.include_generated"),
        ({"parameters": {"explain": "{not json"}}, "parameters.explain"),
        ({"parameters": {"generate": {"max_new_tokens": 2}}}, "parameters.generate: is for causal language models"),
    ],
)
def test_explain_and_output_errors(client, fields, message):
    assert message in error(client.post(URL, json=texts_input(TEXTS, **fields)))


def test_text_errors(client):
    content, headers = binary_texts([b"fine", b"\xff\xfe broken"])
    assert error(client.post(URL, content=content, headers=headers)).startswith("texts.1: not UTF-8 text")
    tensor = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1], "data": [0.0]}]}
    assert "has no input 'input'; it takes one of: texts (BYTES)" in error(client.post(URL, json=tensor))
    assert error(client.post(URL, json=texts_input(["  "]))) == "texts.0: empty text"
