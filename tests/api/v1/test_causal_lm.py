"""A causal LM served from a local transformers directory, over HTTP: generation equal to transformers'
generate, seeded sampling that repeats, explanations of the model's own answer, and a clear 4xx for every
hostile or oversized request, before any work."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from causal_lms import MAX_LENGTH, gpt2, tokenizer, write_lm
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings

PROMPT = "the cat sat on the"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    config = write_lm(tmp_path_factory.mktemp("lm"), generation={"max_new_tokens": 5})
    with TestClient(create_app(Settings(config=config, device="cpu", max_passes_per_request=400))) as test_client:
        yield test_client


def post(client, path: str, body: dict, status: int = 200) -> dict:
    response = client.post(f"/v1/models/tiny-lm/{path}", json=body)
    assert response.status_code == status, response.text
    return response.json()


def test_greedy_generation_is_transformers_generate(client):
    model, tok = gpt2(), tokenizer()
    prompts = [PROMPT, "question : colour of the sky ? answer :"]
    answer = post(client, "predict", {"texts": prompts, "generate": {"max_new_tokens": 6}})
    assert answer["generation"] == {
        "max_new_tokens": 6,
        "do_sample": False,
        "temperature": 1.0,
        "top_p": 1.0,
        "seed": 0,
    }
    for prompt, result in zip(prompts, answer["results"], strict=True):
        ids = tok(prompt, return_tensors="pt")
        with torch.no_grad():
            expected = model.generate(**ids, max_new_tokens=6, do_sample=False, output_scores=True,
                                      return_dict_in_generate=True, pad_token_id=0)  # fmt: skip
        new = expected.sequences[0, ids["input_ids"].shape[1] :].tolist()
        continuation = result["continuation"]
        assert [t["id"] for t in continuation["tokens"]] == new
        assert continuation["text"] == tok.decode(new, skip_special_tokens=True)
        assert "".join(t["text"] for t in continuation["tokens"] if not t["special"]) == continuation["text"]
        log_probs = [float(s.log_softmax(-1)[0, t]) for s, t in zip(expected.scores, new, strict=True)]
        np.testing.assert_allclose([t["log_prob"] for t in continuation["tokens"]], log_probs, rtol=1e-5, atol=1e-6)
        assert continuation["log_prob"] == pytest.approx(sum(log_probs), abs=1e-5)
        assert continuation["finish_reason"] == ("eos" if new[-1] == tok.eos_token_id else "length")
        assert [t["text"] for t in result["prompt_tokens"]] == prompt.split()


def test_the_models_defaults_apply_where_the_request_says_nothing(client):
    answer = post(client, "predict", {"texts": [PROMPT]})
    assert answer["generation"]["max_new_tokens"] == 5 and answer["generation"]["do_sample"] is False
    assert len(answer["results"][0]["continuation"]["tokens"]) <= 5


def test_seeded_sampling_repeats_and_another_seed_differs(client):
    def sample(seed: int, **more) -> list[str]:
        spec = {"max_new_tokens": 12, "do_sample": True, "temperature": 3.0, "seed": seed, **more}
        body = {"texts": [PROMPT] * 4, "generate": spec}
        return [r["continuation"]["text"] for r in post(client, "predict", body)["results"]]

    first = sample(7)
    assert sample(7) == first
    assert sample(8) != first
    assert len(set(first)) > 1  # the texts of one request draw from one stream, not the same draw
    greedy = post(client, "predict", {"texts": [PROMPT], "generate": {"max_new_tokens": 12}})["results"][0]
    # A nucleus that holds only the most likely token is greedy decoding, whatever the temperature.
    assert sample(7, top_p=1e-9)[0] == greedy["continuation"]["text"]


def test_explaining_the_models_own_answer(client):
    spec = {"max_new_tokens": 3}
    generated = post(client, "predict", {"texts": [PROMPT], "generate": spec})["results"][0]["continuation"]
    body = {"texts": [PROMPT], "generate": spec, "methods": ["gradient", "occlusion"]}
    (result,) = post(client, "explain", body)["results"]
    assert result["answer"]["generated"] is True
    assert result["answer"]["text"] == generated["text"]
    assert [t["log_prob"] for t in result["answer"]["tokens"]] == [t["log_prob"] for t in generated["tokens"]]
    # The same answer given as the target: the same maps (teacher forcing reproduces the generation).
    given = post(client, "explain", {"texts": [PROMPT], "target": generated["text"],
                                     "methods": ["gradient", "occlusion"]})["results"][0]  # fmt: skip
    assert given["answer"]["generated"] is False
    for a, b in zip(result["explanations"], given["explanations"], strict=True):
        np.testing.assert_allclose(a["scores"], b["scores"], rtol=1e-5, atol=1e-7)
        assert np.array(a["scores"]).shape == (len(generated["tokens"]), len(PROMPT.split()))


def test_progress_events_count_the_rows_of_every_answer_token(client):
    body = {"texts": [PROMPT], "target": "mat under the tree", "method": {"name": "integrated_gradients", "steps": 4}}
    with client.stream(
        "POST", "/v1/models/tiny-lm/explain", json=body, headers={"Accept": "text/event-stream"}
    ) as response:
        text = "".join(response.iter_text())
    assert "event: progress" in text and "event: result" in text


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"texts": ["the " * 30_000]}, 413, "texts.0"),  # a 100,000-character prompt
        ({"texts": ["the " * 30]}, 413, "texts.0"),  # over max_length in tokens
        ({"texts": [PROMPT], "generate": {"max_new_tokens": 10**9}}, 422, "generate.max_new_tokens"),
        ({"texts": [PROMPT], "generate": {"max_new_tokens": MAX_LENGTH}}, 413, "generate.max_new_tokens"),
        ({"texts": [PROMPT], "generate": {"temperature": 0}}, 422, "generate.temperature"),
        ({"texts": [PROMPT], "generate": {"top_p": 0}}, 422, "generate.top_p"),
        ({"texts": [PROMPT], "generate": {"max_new_tokens": "5"}}, 422, "generate.max_new_tokens"),
        ({"texts": [PROMPT], "generate": {"seed": -1}}, 422, "generate.seed"),
        ({"texts": [PROMPT], "generate": {"beams": 4}}, 422, "generate.beams"),
        ({"images": ["aGVsbG8="]}, 422, "images"),
    ],
)
def test_hostile_generation_requests_are_refused(client, body, status, field):
    response = client.post("/v1/models/tiny-lm/predict", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"] == field


def test_nan_temperature_and_non_utf8_bytes_are_refused(client):
    for raw in (b'{"texts": ["the cat"], "generate": {"temperature": NaN}}', b'{"texts": ["the \xff\xfe cat"]}'):
        response = client.post("/v1/models/tiny-lm/predict", content=raw, headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, response.text
        assert "error" in response.json()


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"target": "mat", "generate": {"max_new_tokens": 2}}, 422, "generate"),
        ({"target": ""}, 422, "target"),
        ({"target": ["mat", "tree"]}, 422, "target"),  # two targets for one text
        ({"target": "the " * 30}, 413, "target"),
        ({"target": "mat", "method": "gradcam"}, 422, "method"),
        ({"target": "mat", "method": {"name": "integrated_gradients", "steps": 400}}, 413, "method.steps"),
        ({"target": "mat", "evaluate": {}}, 422, "evaluate"),
        ({"target": "mat", "evaluate": {"metrics": ["deletion"], "steps": 300}}, 422, "evaluate.steps"),
    ],
)
def test_hostile_explain_requests_are_refused_before_any_work(client, body, status, field):
    response = client.post("/v1/models/tiny-lm/explain", json={"texts": [PROMPT], **body})
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"].startswith(field), response.json()


def test_generation_options_on_a_classifier_are_refused():
    with TestClient(create_app(Settings(device="cpu"))) as c:
        r = c.post("/v1/models/reviews/predict", json={"texts": ["great"], "generate": {"max_new_tokens": 2}})
        assert r.status_code == 422 and r.json()["error"]["field"] == "generate", r.text
        r = c.post("/v1/models/reviews/explain", json={"texts": ["great"], "include_generated": True})
        assert r.status_code == 422 and r.json()["error"]["field"] == "include_generated", r.text


def test_faithfulness_deletes_and_inserts_the_prompts_tokens_by_the_answers_scores(client):
    """The deletion curve starts at the answer's log-probability and ends with every prompt token replaced by
    the pad token, whichever ranking; checked against the model called on those texts directly."""
    model, tok = gpt2(), tokenizer()
    body = {"texts": [PROMPT], "target": "mat under", "method": "gradient",
            "evaluate": {"metrics": ["deletion", "insertion"], "steps": 5}}  # fmt: skip
    (result,) = post(client, "explain", body)["results"]
    explanation = result["explanations"][0]
    deletion, insertion = explanation["faithfulness"]["deletion"], explanation["faithfulness"]["insertion"]
    prompt, answer = tok(PROMPT)["input_ids"], tok("mat under", add_special_tokens=False)["input_ids"]

    def log_prob(ids: list[int]) -> float:
        with torch.no_grad():
            values = model(torch.tensor([ids + answer])).logits.log_softmax(-1)[0]
        return sum(float(values[len(ids) + j - 1, answer[j]]) for j in range(len(answer)))

    assert deletion["curve"][0] == pytest.approx(result["answer"]["log_prob"], abs=1e-5)
    assert deletion["curve"][0] == pytest.approx(log_prob(prompt), abs=1e-5)
    assert deletion["curve"][-1] == pytest.approx(log_prob([tok.pad_token_id] * len(prompt)), abs=1e-5)
    assert insertion["curve"][0] == pytest.approx(deletion["curve"][-1], abs=1e-5)
    assert insertion["curve"][-1] == pytest.approx(deletion["curve"][0], abs=1e-5)
    # The first deletion step removes the prompt token with the highest answer score.
    top = int(np.argmax(explanation["answer_scores"]))
    removed = [tok.pad_token_id if i == top else t for i, t in enumerate(prompt)]
    assert deletion["curve"][1] == pytest.approx(log_prob(removed), abs=1e-5)
    assert len(deletion["curve"]) == 6 and "random_auc" in deletion


def test_html_highlights_the_prompt_for_the_whole_answer_and_each_token(client):
    body = {"texts": ["the <b>cat</b> sat"], "target": "on the mat", "method": "gradient", "output": {"html": True}}
    (result,) = post(client, "explain", body)["results"]
    explanation = result["explanations"][0]
    assert explanation["html"].startswith('<span class="saliency-text">')
    assert "<b>" not in explanation["html"] and "&lt;b&gt;" in explanation["html"]  # the text is escaped
    assert len(explanation["html_tokens"]) == 3 and explanation["html_tokens"][0] != explanation["html_tokens"][2]
    plain = post(client, "explain", {**body, "output": {}})["results"][0]["explanations"][0]
    assert plain["html"] is None and plain["html_tokens"] is None


def test_the_model_is_listed_as_a_causal_lm(client):
    (entry,) = [m for m in client.get("/v1/models").json() if m["name"] == "tiny-lm"]
    assert entry["kind"] == "causal_lm" and entry["max_length"] == MAX_LENGTH and entry["input_size"] is None
    methods = {m["name"] for m in client.get("/v1/methods").json() if "causal_lm" in m["capabilities"]["modalities"]}
    assert methods == {"gradient", "input_x_gradient", "integrated_gradients", "occlusion"}


def test_concurrent_generations_and_explanations_answer_as_alone(client):
    """Generation rows of several requests (KV-cached, at different steps) share passes with each other,
    never with an explanation's rows; every answer is the one the request gets alone."""
    from concurrent.futures import ThreadPoolExecutor

    prompts = [PROMPT, "a dog ran under the", "question : colour of the sky ? answer :"]
    sampled = {"max_new_tokens": 5, "do_sample": True, "temperature": 1.5, "seed": 3}
    bodies = [("predict", {"texts": [p], "generate": sampled}) for p in prompts]
    bodies.append(("explain", {"texts": [PROMPT], "target": " the mat", "methods": ["occlusion", "gradient"]}))
    alone = [post(client, path, body) for path, body in bodies]
    with ThreadPoolExecutor(len(bodies)) as pool:
        together = list(pool.map(lambda b: post(client, *b), bodies))
    for a, b in zip(alone[:3], together[:3], strict=True):
        assert [t["id"] for t in a["results"][0]["continuation"]["tokens"]] == [
            t["id"] for t in b["results"][0]["continuation"]["tokens"]
        ]
        np.testing.assert_allclose(
            [t["log_prob"] for t in a["results"][0]["continuation"]["tokens"]],
            [t["log_prob"] for t in b["results"][0]["continuation"]["tokens"]],
            rtol=1e-5,
            atol=1e-6,
        )
    for a, b in zip(alone[3]["results"][0]["explanations"], together[3]["results"][0]["explanations"], strict=True):
        np.testing.assert_allclose(a["scores"], b["scores"], rtol=1e-5, atol=1e-6)
