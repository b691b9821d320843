"""Text models over v2: a BYTES tensor of texts (JSON strings or UTF-8 binary) gives v1's logits; the
explain parameter is for image models."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings

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


def texts_input(data, shape=None) -> dict:
    return {"inputs": [{"name": "texts", "datatype": "BYTES", "shape": shape or [len(data)], "data": data}]}


def binary_texts(items: list[bytes]) -> tuple[bytes, dict[str, str]]:
    data = b"".join(struct.pack("<I", len(item)) + item for item in items)
    tensor = {
        "name": "texts",
        "datatype": "BYTES",
        "shape": [len(items)],
        "parameters": {"binary_data_size": len(data)},
    }
    head = json.dumps({"inputs": [tensor], "outputs": [{"name": "logits"}]}).encode()
    return head + data, {"Inference-Header-Content-Length": str(len(head))}


def test_metadata_lists_the_texts_input(client):
    body = client.get("/v2/models/bert").json()
    assert body["inputs"] == [{"name": "texts", "datatype": "BYTES", "shape": [-1]}]
    assert [o["name"] for o in body["outputs"]] == ["logits", "probabilities"]


def test_texts_give_v1s_logits_as_json_or_binary(client):
    from_json = client.post(URL, json=texts_input(TEXTS)).json()
    logits = np.float32(from_json["outputs"][0]["data"]).reshape(2, 2)
    v1 = client.post("/v1/models/bert/predict", json={"texts": TEXTS, "top_k": 2}).json()
    for row, result in zip(logits, v1["results"], strict=True):
        for p in result["predictions"]:
            assert row[p["index"]] == pytest.approx(p["logit"], abs=1e-5)
    content, headers = binary_texts([t.encode() for t in TEXTS])
    from_binary = client.post(URL, content=content, headers=headers).json()
    assert from_binary["outputs"][0]["data"] == from_json["outputs"][0]["data"]


def test_text_errors(client):
    content, headers = binary_texts([b"fine", b"\xff\xfe broken"])
    refused = client.post(URL, content=content, headers=headers)
    assert refused.status_code == 400 and refused.json()["error"].startswith("texts.1: not UTF-8 text")
    explained = client.post(URL, json={**texts_input(TEXTS), "parameters": {"explain": {"method": "gradient"}}})
    assert explained.status_code == 400
    assert "v2 explains image models; explain texts with POST /v1/models/bert/explain" in explained.json()["error"]
    tensor = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1], "data": [0.0]}]}
    assert "has no input 'input'; it takes one of: texts (BYTES)" in client.post(URL, json=tensor).json()["error"]
    empty = client.post(URL, json=texts_input(["  "]))
    assert empty.status_code == 400 and empty.json()["error"] == "texts.0: empty text"
