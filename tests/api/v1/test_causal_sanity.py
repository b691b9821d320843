"""POST /v1/models/{name}/sanity for a causal LM: the cascade over the decoder blocks (the head tied to the
token embedding goes with it), each step's similarity against a direct computation, the served model
untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from causal_lms import tokenizer, write_lm
from fastapi.testclient import TestClient
from scipy.stats import spearmanr

from service.core.sanity.randomize import blocks, fresh_copy, randomize
from service.main import create_app
from service.settings import Settings

PROMPTS = ["the cat sat on the", "question : colour of the sky ? answer :"]
TARGET = "mat under the tree"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    config = write_lm(tmp_path_factory.mktemp("lm"))
    with TestClient(create_app(Settings(config=config, device="cpu"))) as test_client:
        yield test_client


def gradient_scores(model, prompt: str) -> np.ndarray:
    """|d log p(answer token j) / d token embedding| (L2 over the embedding) for every j and prompt token."""
    tok = tokenizer()
    ids = torch.tensor([tok(prompt)["input_ids"] + tok(TARGET, add_special_tokens=False)["input_ids"]])
    start, rows = len(prompt.split()), []
    for j in range(len(TARGET.split())):
        embedded = model.get_input_embeddings()(ids).detach().requires_grad_(True)
        log_probs = model(inputs_embeds=embedded).logits.log_softmax(-1)
        (grad,) = torch.autograd.grad(log_probs[0, start + j - 1, ids[0, start + j]], embedded)
        rows.append(grad[0, :start].norm(dim=-1).numpy())
    return np.stack(rows)


def test_model_randomization_over_the_decoder_blocks_equals_the_definition(client):
    loaded = client.app.state.services.pool.get("tiny-lm")
    before = {k: v.clone() for k, v in loaded.module.state_dict().items()}
    body = {"texts": PROMPTS, "target": TARGET, "methods": ["gradient"], "seed": 5}
    response = client.post("/v1/models/tiny-lm/sanity", json=body)
    assert response.status_code == 200, response.text
    checked = response.json()
    (result,) = checked["results"]
    parts = ["transformer.ln_f", "transformer.h.1", "transformer.h.0", "transformer.wpe", "transformer.wte"]
    assert result["steps"] == ["+".join(parts[: i + 1]) for i in range(len(parts))]
    assert checked["answers"] == [TARGET, TARGET] and checked["targets"] == []
    assert result["ssim"] == [None] * len(parts)

    copy = fresh_copy(loaded)
    original = [gradient_scores(copy.model, p) for p in PROMPTS]
    for step, (_, block) in enumerate(blocks(copy)):
        randomize(block, 5 + step)
        other = [gradient_scores(copy.model, p) for p in PROMPTS]
        rho = np.mean([spearmanr(a.ravel(), b.ravel()).statistic for a, b in zip(original, other, strict=True)])
        assert result["spearman"][step] == pytest.approx(rho, abs=1e-4)
    for key, value in loaded.module.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_the_models_own_answer_is_checked_and_data_randomization_is_refused(client):
    body = {"texts": PROMPTS[:1], "methods": ["occlusion", "input_x_gradient"], "seed": 1}
    response = client.post("/v1/models/tiny-lm/sanity", json=body)
    assert response.status_code == 200, response.text
    assert len(response.json()["answers"]) == 1 and len(response.json()["results"]) == 2
    refused = client.post("/v1/models/tiny-lm/sanity", json={**body, "test": "data_randomization",
                                                             "reference_model": "x"})  # fmt: skip
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "test", refused.text
