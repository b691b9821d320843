"""A causal LM over v2: prompts as a BYTES tensor; without the explain parameter its continuation (v1's
predict with `generate`: the same ids, log-probabilities and text), with it the explained answer (v1's explain:
the same scores); and a 4xx for every hostile request, before any row runs."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from causal_lms import MAX_LENGTH, VOCAB, write_lm
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings

from .outputs import arrays

PROMPTS = ["the cat sat on the", "question : colour of the sky ? answer :", "a dog"]
URL = "/v2/models/tiny-lm/infer"
EOS = VOCAB.index("<eos>")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    config = write_lm(tmp_path_factory.mktemp("v2-lm"), generation={"max_new_tokens": 5})
    with TestClient(create_app(Settings(config=config, device="cpu", max_passes_per_request=400))) as test_client:
        yield test_client


def texts(prompts: list[str], **fields) -> dict:
    tensor = {"name": "texts", "datatype": "BYTES", "shape": [len(prompts)], "data": prompts}
    return {"inputs": [tensor], **fields}


def infer(client, prompts: list[str], **parameters) -> tuple[dict, dict[str, np.ndarray]]:
    return arrays(client.post(URL, json=texts(prompts, parameters=parameters)))


def v1(client, path: str, body: dict) -> dict:
    response = client.post(f"/v1/models/tiny-lm/{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def rows(client) -> float:
    """saliency_rows_total: the rows (model passes) the device ran."""
    lines = client.get("/metrics").text.splitlines()
    return sum(float(line.split()[-1]) for line in lines if line.startswith("saliency_rows_total"))


def test_metadata_lists_the_generation_and_explanation_outputs(client):
    body = client.get("/v2/models/tiny-lm").json()
    assert body["inputs"] == [{"name": "texts", "datatype": "BYTES", "shape": [-1]}]
    assert body["outputs"] == [
        {"name": "token_ids", "datatype": "INT64", "shape": [-1, -1]},
        {"name": "log_probs", "datatype": "FP32", "shape": [-1, -1]},
        {"name": "text", "datatype": "BYTES", "shape": [-1]},
        {"name": "prompt_ids", "datatype": "INT64", "shape": [-1, -1]},
        {"name": "answer_ids", "datatype": "INT64", "shape": [-1, -1]},
        {"name": "scores", "datatype": "FP32", "shape": [-1, -1, -1]},
        {"name": "answer_scores", "datatype": "FP32", "shape": [-1, -1]},
    ]


def check_generation(out: dict[str, np.ndarray], expected: dict) -> None:
    """v2's padded tensors hold v1's continuation of every prompt, exactly."""
    results = expected["results"]
    assert out["token_ids"].shape[0] == len(results) and out["token_ids"].dtype == np.int64
    for i, result in enumerate(results):
        tokens = result["continuation"]["tokens"]
        g = len(tokens)
        assert out["token_ids"][i, :g].tolist() == [t["id"] for t in tokens]
        assert (out["token_ids"][i, g:] == -1).all() and (out["log_probs"][i, g:] == 0).all()
        np.testing.assert_array_equal(out["log_probs"][i, :g], np.float32([t["log_prob"] for t in tokens]))
        assert out["text"][i] == result["continuation"]["text"]
        prompt = [t["id"] for t in result["prompt_tokens"]]
        assert out["prompt_ids"][i, : len(prompt)].tolist() == prompt
        assert (out["prompt_ids"][i, len(prompt) :] == -1).all()


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_greedy_generation_is_v1s(client, binary):
    head, out = infer(client, PROMPTS, generate={"max_new_tokens": 6}, binary_data_output=binary)
    expected = v1(client, "predict", {"texts": PROMPTS, "generate": {"max_new_tokens": 6}})
    assert head["parameters"] == {"generate": expected["generation"]}
    assert [o["name"] for o in head["outputs"]] == ["token_ids", "log_probs", "text", "prompt_ids"]
    assert out["token_ids"].shape == (3, 6) and out["text"].shape == (3,)
    check_generation(out, expected)
    # Without parameters.generate: the model's defaults (5 new tokens), as v1's.
    head, out = infer(client, PROMPTS[:1])
    assert head["parameters"]["generate"]["max_new_tokens"] == 5
    check_generation(out, v1(client, "predict", {"texts": PROMPTS[:1]}))


def test_seeded_sampling_repeats_and_is_v1s(client):
    spec = {"max_new_tokens": 10, "do_sample": True, "temperature": 3.0, "top_p": 0.9, "seed": 7}
    _, first = infer(client, [PROMPTS[0]] * 3, generate=spec)
    _, again = infer(client, [PROMPTS[0]] * 3, generate=json.dumps(spec))  # the same as a JSON string
    np.testing.assert_array_equal(first["token_ids"], again["token_ids"])
    _, other = infer(client, [PROMPTS[0]] * 3, generate={**spec, "seed": 8})
    assert other["token_ids"].tolist() != first["token_ids"].tolist()
    assert len({tuple(row) for row in first["token_ids"].tolist()}) > 1  # one stream for the batch
    assert (first["token_ids"] == EOS).any()  # a special token, which `text` leaves out
    check_generation(first, v1(client, "predict", {"texts": [PROMPTS[0]] * 3, "generate": spec}))


def check_explanation(out: dict[str, np.ndarray], expected: dict, include_generated: bool) -> None:
    results = expected["results"]
    for i, result in enumerate(results):
        prompt = [t["id"] for t in result["prompt"]["tokens"]]
        answer = [t["id"] for t in result["answer"]["tokens"]]
        p, k = len(prompt), len(answer)
        s = p + k if include_generated else p
        assert out["prompt_ids"][i, :p].tolist() == prompt and (out["prompt_ids"][i, p:] == -1).all()
        assert out["answer_ids"][i, :k].tolist() == answer and (out["answer_ids"][i, k:] == -1).all()
        np.testing.assert_allclose(out["log_probs"][i, :k], [t["log_prob"] for t in result["answer"]["tokens"]],
                                   rtol=1e-6, atol=1e-6)  # fmt: skip
        explanation = result["explanations"][0]
        assert np.array(explanation["scores"]).shape == (k, s)
        np.testing.assert_allclose(out["scores"][i, :k, :s], explanation["scores"], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(out["answer_scores"][i, :s], explanation["answer_scores"], rtol=1e-6, atol=1e-6)
        assert not out["scores"][i, k:].any() and not out["scores"][i, :, s:].any()
        assert not out["answer_scores"][i, s:].any() and np.abs(out["answer_scores"][i, :s]).max() > 0
        assert out["text"][i] == result["answer"]["text"]


@pytest.mark.parametrize("method", ["gradient", "occlusion", {"name": "integrated_gradients", "steps": 4}])
def test_explaining_the_models_own_answer_is_v1s(client, method):
    generate = {"max_new_tokens": 3}
    head, out = infer(client, PROMPTS[:2], explain={"method": method}, generate=generate)
    expected = v1(client, "explain", {"texts": PROMPTS[:2], "method": method, "generate": generate})
    assert head["parameters"] == {
        "explain": {"method": expected["methods"][0], "target": "predicted", "generated": True,
                    "include_generated": False},
    }  # fmt: skip
    assert [o["name"] for o in head["outputs"]] == [
        "prompt_ids", "answer_ids", "log_probs", "scores", "answer_scores", "text",
    ]  # fmt: skip
    check_explanation(out, expected, include_generated=False)
    # The answer is the model's own: the generation's ids.
    _, generated = infer(client, PROMPTS[:2], generate=generate)
    np.testing.assert_array_equal(out["answer_ids"], generated["token_ids"])


@pytest.mark.parametrize("include_generated", [False, True])
def test_given_targets_and_include_generated_widen_the_scored_tokens(client, include_generated):
    targets = ["mat under the tree", "blue"]
    explain = {"method": "input_x_gradient", "target": targets, "include_generated": include_generated}
    head, out = infer(client, PROMPTS[:2], explain=explain, binary_data_output=True)
    expected = v1(client, "explain", {"texts": PROMPTS[:2], **explain})
    assert head["parameters"]["explain"]["target"] == targets and not head["parameters"]["explain"]["generated"]
    prompt_tokens = max(len(r["prompt"]["tokens"]) for r in expected["results"])
    answer_tokens = max(len(r["answer"]["tokens"]) for r in expected["results"])
    width = max(len(r["prompt"]["tokens"]) + len(r["answer"]["tokens"]) * include_generated
                for r in expected["results"])  # fmt: skip
    assert out["scores"].shape == (2, answer_tokens, width) and out["answer_scores"].shape == (2, width)
    assert width > prompt_tokens if include_generated else width == prompt_tokens
    check_explanation(out, expected, include_generated)


def test_one_target_for_every_prompt(client):
    head, out = infer(client, PROMPTS[:2], explain={"target": "the mat"})
    assert head["parameters"]["explain"]["target"] == ["the mat", "the mat"]
    assert out["text"].tolist() == ["the mat", "the mat"]


def binary_prompts(items: list[bytes]) -> tuple[bytes, dict[str, str]]:
    data = b"".join(struct.pack("<I", len(item)) + item for item in items)
    tensor = {
        "name": "texts",
        "datatype": "BYTES",
        "shape": [len(items)],
        "parameters": {"binary_data_size": len(data)},
    }
    head = json.dumps({"inputs": [tensor]}).encode()
    return head + data, {"Inference-Header-Content-Length": str(len(head))}


def raw(parameters: str) -> dict:
    """A body as text: JSON's NaN, which Python's json (and a client that writes it) sends."""
    body = f'{{"inputs": [{{"name": "texts", "datatype": "BYTES", "shape": [1], "data": ["the cat"]}}], {parameters}}}'
    return {"content": body.encode(), "headers": {"Content-Type": "application/json"}}


HOSTILE = [
    ({"json": texts(["the cat"], parameters={"generate": {"max_new_tokens": 10**9}})}, 400,
     "parameters.generate.max_new_tokens: Input should be less than or equal to 4096"),
    ({"json": texts(["the cat"], parameters={"generate": {"max_new_tokens": MAX_LENGTH}})}, 413,
     "parameters.generate.max_new_tokens: a prompt of 2 tokens"),
    ({"json": texts(["the cat"], parameters={"generate": {"temperature": 0}})}, 400,
     "parameters.generate.temperature: Input should be greater than 0"),
    ({"json": texts(["the cat"], parameters={"generate": {"temperature": "NaN"}})}, 400,
     "parameters.generate.temperature: Input should be a valid number"),
    (raw('"parameters": {"generate": {"temperature": NaN}}'), 400,
     "parameters.generate.temperature: Input should be a finite number"),
    (raw('"parameters": {"generate": "{\\"temperature\\": NaN}"}'), 400, "parameters.generate.temperature"),
    ({"json": texts(["the cat"], parameters={"generate": {"top_p": 0}})}, 400, "parameters.generate.top_p"),
    ({"json": texts(["the cat"], parameters={"generate": {"beams": 4}})}, 400, "parameters.generate.beams"),
    ({"json": texts(["the cat"], parameters={"generate": {"max_new_tokens": "5"}})}, 400,
     "parameters.generate.max_new_tokens"),
    ({"json": texts(["the cat"], parameters={"generate": "{not json"})}, 400, "parameters.generate"),
    ({"json": texts(["the cat"], parameters={"generate": [1]})}, 400, "parameters.generate"),
    ({"json": texts(["the cat"], parameters={"generate": {"max_new_tokens": 2}, "explain": {"target": "mat"}})}, 400,
     "parameters.generate: give either `target` (a continuation) or `generate`, not both"),
    ({"json": texts(["the cat"], parameters={"explain": {"target": ""}})}, 400, "parameters.explain.target: "),
    ({"json": texts(["the cat"], parameters={"explain": {"target": ["mat", "tree"]}})}, 400,
     "parameters.explain.target: 2 targets for 1 texts"),
    ({"json": texts(["the cat"], parameters={"explain": {"target": "the " * 30}})}, 413, "parameters.explain.target"),
    ({"json": texts(["the cat"], parameters={"explain": {"target": 3}})}, 400, "parameters.explain.target"),
    ({"json": texts(["the cat"], parameters={"explain": {"method": "gradcam", "target": "mat"}})}, 400,
     "parameters.explain.method.name: gradcam does not explain causal_lm models"),
    ({"json": texts(["the cat"], parameters={"explain": {"target": "mat", "method": {"name": "integrated_gradients",
                                                                                    "steps": 400}}})}, 413,
     "parameters.explain.method.steps"),
    ({"json": texts(["the cat"], parameters={"explain": {"objective": "probability"}})}, 400,
     "parameters.explain.objective: Extra inputs are not permitted"),
    ({"json": texts(["the cat"], parameters={"explain": {"include_generated": "yes"}})}, 400,
     "parameters.explain.include_generated"),
    ({"json": texts(["the " * 30])}, 413, "texts.0: 30 tokens, over the model's max_length of 24"),
    ({"json": texts(["the " * 100_000])}, 413, "texts.0: text is 400000 characters"),
    ({"json": texts(["  "])}, 400, "texts.0: empty text"),
    ({"json": texts(["the cat"], outputs=[{"name": "scores"}])}, 400, "output 'scores' needs the `explain` parameter"),
    ({"json": texts(["the cat"], outputs=[{"name": "token_ids"}], parameters={"explain": {}})}, 400,
     "output 'token_ids' comes without the `explain` parameter"),
    ({"json": texts(["the cat"], outputs=[{"name": "logits"}])}, 400, "model 'tiny-lm' has no output 'logits'"),
    (dict(zip(("content", "headers"), binary_prompts([b"the cat", b"the \xff\xfe cat"]), strict=True)), 400,
     "texts.1: not UTF-8 text"),
]  # fmt: skip


@pytest.mark.parametrize(("request_", "status", "message"), HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_requests_are_refused_before_any_row_runs(client, request_, status, message):
    before = rows(client)
    response = client.post(URL, **request_)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"} and message in response.json()["error"], response.json()
    assert rows(client) == before


def test_a_prompt_of_100000_tokens_is_refused_before_any_row_runs(tmp_path):
    config = write_lm(tmp_path)
    settings = Settings(config=config, device="cpu", max_text_chars=10**6, max_body_bytes=2 * 10**6)
    with TestClient(create_app(settings)) as c:
        before = rows(c)
        response = c.post(URL, json=texts(["the " * 100_000]))
        assert response.status_code == 413, response.text
        assert response.json()["error"].startswith("texts.0: 100000 tokens, over the model's max_length")
        assert rows(c) == before
