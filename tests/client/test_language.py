"""The client against a live server with a causal LM: `predict(generate=...)` gives `Generated` (tokens with
log-probabilities), `explain` gives `AnswersExplained` with numpy score matrices, equal to the JSON the
server sends; sync and async alike."""

from __future__ import annotations

import asyncio
import os

import httpx
import numpy as np
import pytest
from causal_lms import write_lm
from saliency_client import AnswersExplained, AsyncClient, Client, Generated, ServiceError
from servers import serving

PROMPT = "the cat sat on the"


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("client-lm")
    config = write_lm(folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALIENCY_")}
    with serving(["--config", str(config)], env, folder / "server.log", startup_s=180) as (_, base):
        yield base


def test_generate_and_explain_the_models_answer(url):
    with Client(url) as client:
        generated = client.predict("tiny-lm", texts=[PROMPT], generate={"max_new_tokens": 3, "seed": 1})
        assert isinstance(generated, Generated)
        (continuation,) = generated.results
        assert len(continuation.tokens) == 3 and all(t.log_prob is not None for t in continuation.tokens)
        assert continuation.log_prob == pytest.approx(sum(t.log_prob for t in continuation.tokens))
        explained = client.explain("tiny-lm", texts=[PROMPT], methods=["gradient", "occlusion"],
                                   generate={"max_new_tokens": 3}, include_generated=True)  # fmt: skip
    assert isinstance(explained, AnswersExplained) and explained.include_generated
    (answered,) = explained.results
    assert answered.answer == continuation.text and answered.generated
    raw = httpx.post(f"{url}/v1/models/tiny-lm/explain", json={"texts": [PROMPT], "methods": ["gradient", "occlusion"],
                     "generate": {"max_new_tokens": 3}, "include_generated": True}).json()  # fmt: skip
    for ours, sent in zip(answered.explanations, raw["results"][0]["explanations"], strict=True):
        assert ours.scores.shape == (3, len(PROMPT.split()) + 3) and ours.scores.dtype == np.float64
        np.testing.assert_array_equal(ours.scores, np.array(sent["scores"]))
        np.testing.assert_array_equal(ours.answer_scores, np.array(sent["answer_scores"]))


def test_the_async_client_explains_a_given_target_and_errors_are_service_errors(url):
    async def run():
        async with AsyncClient(url) as client:
            answer = await client.explain("tiny-lm", texts=PROMPT, target="mat", method="input_x_gradient")
            with pytest.raises(ServiceError) as caught:
                await client.predict("tiny-lm", texts=PROMPT, generate={"temperature": 0.0})
            return answer, caught.value

    answer, error = asyncio.run(run())
    assert [t.text for t in answer.results[0].answer_tokens] == ["mat"]
    assert answer.results[0].explanation.scores.shape == (1, 5)
    assert error.status == 422 and error.field == "generate.temperature"
