"""Loading causal LMs: a local transformers directory or a factory, refused with the reason when the directory
is missing, the model has no LM head or max_length is over its positions; the wrapper's per-position
log-probabilities are the model's own."""

from __future__ import annotations

import pytest
import torch
from causal_lms import gpt2, tokenizer, write_lm

from service.models import ModelSpec
from service.models.causal_lm import CausalLM, load
from service.models.loader import ModelLoadError
from service.models.text import rows_of


def factory():
    return gpt2(), tokenizer()


def spec(architecture: str, **more) -> ModelSpec:
    return ModelSpec.model_validate({"name": "lm", "kind": "causal_lm", "architecture": architecture,
                                     "max_length": 24, "generation": {"max_new_tokens": 4}, **more})  # fmt: skip


def test_a_factory_and_a_directory_load_the_same_model(tmp_path):
    write_lm(tmp_path)
    from_dir, tok = load(spec(f"transformers:{tmp_path / 'tiny-lm'}"))
    from_factory, _ = load(spec(f"python:{__name__}:factory"))
    ids = torch.tensor([tok("the cat sat")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(from_dir(ids).logits, from_factory(ids).logits, atol=1e-6)


@pytest.mark.parametrize(
    ("architecture", "more", "why"),
    [
        ("transformers:/nonexistent/lm", {}, "directory not found"),
        (f"python:{__name__}:factory", {"max_length": 40, "generation": {"max_new_tokens": 4}}, "over the model's 32"),
    ],
)
def test_what_cannot_be_served_says_why(architecture, more, why):
    with pytest.raises(ModelLoadError, match=why):
        load(spec(architecture, **more))


def test_a_prompt_without_room_for_the_default_answer_is_a_config_error():
    with pytest.raises(ValueError, match="room for a prompt"):
        spec(f"python:{__name__}:factory", generation={"max_new_tokens": 24})


def test_the_wrapper_gives_each_tokens_log_probability_and_the_next_tokens():
    model, tok = factory()
    wrapped = CausalLM(model, "transformer.wte", 24)
    ids = torch.tensor([tok("the cat sat on the mat")["input_ids"]])
    role = torch.ones_like(ids)
    with torch.no_grad():
        out = wrapped(rows_of(wrapped.embed(ids, role), role, ids))
        log_probs = model(ids).logits.log_softmax(-1)[0]
    assert out.shape == (1, 24 + len(tok))
    expected = log_probs[:-1].gather(1, ids[0, 1:, None])[:, 0]
    torch.testing.assert_close(out[0, 1:6], expected, rtol=1e-5, atol=1e-6)
    assert out[0, 0] == 0 and (out[0, 6:24] == 0).all()
    torch.testing.assert_close(wrapped.next_token(out)[0], log_probs[-1], rtol=1e-5, atol=1e-6)
