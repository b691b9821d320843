"""Text methods at the embedding layer: exact against Captum's layer methods, against the model's own
forward for occlusion, and the same scores for a text alone or padded in a batch."""

from __future__ import annotations

import pytest
import torch
from captum.attr import LayerGradientXActivation, LayerIntegratedGradients
from transformers import AutoModelForSequenceClassification

from service.codecs import codec_for
from service.core.plans import explain_here
from service.engine.executor import run_pass
from service.explainers import default_registry
from service.models import ModelPool, ModelSpec
from service.settings import Settings

REGISTRY = default_registry()
TEXTS = ["the movie was not great !", "i loved this film , the actors and the plot were really fun ."]
SETTINGS = Settings(chunk_size=5)


@pytest.fixture(scope="module")
def loaded(tiny_bert):
    spec = ModelSpec(name="bert", kind="text", architecture=f"transformers:{tiny_bert}", num_classes=2, max_length=32)
    return ModelPool([spec], device="cpu").get("bert")


@pytest.fixture(scope="module")
def hf(tiny_bert):
    return AutoModelForSequenceClassification.from_pretrained(tiny_bert, local_files_only=True).eval()


def rows(loaded, texts):
    return codec_for("text").decode(list(texts), loaded, SETTINGS, None)


def ours(loaded, method: dict, texts=TEXTS, targets=(1, 0)):
    explainer, params = REGISTRY.parse(method, "text")
    x = rows(loaded, texts).x
    return explain_here(loaded, explainer, params, x, torch.tensor(targets), "logit", SETTINGS), x


def captum_inputs(loaded, texts):
    encoded = loaded.tokenizer(list(texts), padding=True, return_tensors="pt")
    ids, mask = encoded["input_ids"], encoded["attention_mask"]
    special = torch.isin(ids, torch.tensor(loaded.tokenizer.all_special_ids))
    pad_baseline = torch.where(special, ids, torch.full_like(ids, loaded.tokenizer.pad_token_id))
    return ids, mask, pad_baseline


def forward(hf):
    return lambda ids, mask: hf(input_ids=ids, attention_mask=mask).logits


def test_integrated_gradients_equals_captums_layer_integrated_gradients(loaded, hf):
    result, _ = ours(loaded, {"name": "integrated_gradients", "steps": 16, "rule": "riemann_right"})
    ids, mask, baseline = captum_inputs(loaded, TEXTS)
    lig = LayerIntegratedGradients(forward(hf), hf.bert.embeddings.word_embeddings)
    expected = lig.attribute(
        ids, baselines=baseline, additional_forward_args=(mask,), target=[1, 0], n_steps=16, method="riemann_right"
    ).sum(dim=-1)
    got = result.attributions[..., :-2].sum(dim=-1)
    torch.testing.assert_close(got, expected.float(), rtol=1e-4, atol=1e-6)
    assert got.abs().max() > 0


@pytest.mark.parametrize("multiply", [True, False])
def test_input_x_gradient_and_gradient_equal_captums_layer_gradient_x_activation(loaded, hf, multiply):
    method = "input_x_gradient" if multiply else "gradient"
    result, _ = ours(loaded, {"name": method})
    ids, mask, _ = captum_inputs(loaded, TEXTS)
    layer = LayerGradientXActivation(forward(hf), hf.bert.embeddings.word_embeddings, multiply_by_inputs=multiply)
    expected = layer.attribute(ids, additional_forward_args=(mask,), target=[1, 0])
    torch.testing.assert_close(result.attributions[..., :-2], expected, rtol=1e-4, atol=1e-7)


def test_token_occlusion_is_the_score_drop_without_each_token(loaded, hf):
    result, _ = ours(loaded, {"name": "occlusion"}, texts=TEXTS[:1], targets=(1,))
    ids, mask, _ = captum_inputs(loaded, TEXTS[:1])
    with torch.no_grad():
        full = hf(input_ids=ids, attention_mask=mask).logits[0, 1]
        expected = torch.zeros(ids.shape[1])
        for j in range(1, ids.shape[1] - 1):  # [CLS] and [SEP] are never occluded
            occluded = ids.clone()
            occluded[0, j] = loaded.tokenizer.pad_token_id
            expected[j] = full - hf(input_ids=occluded, attention_mask=mask).logits[0, 1]
    torch.testing.assert_close(result.attributions[0], expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", ["gradient", "input_x_gradient", "integrated_gradients", "smoothgrad", "occlusion"])
def test_a_text_scores_the_same_alone_and_padded_in_a_batch(loaded, method):
    spec = {"name": method, **({"seed": 5, "samples": 3} if method == "smoothgrad" else {})}
    spec |= {"steps": 6} if method == "integrated_gradients" else {}
    alone, _ = ours(loaded, spec, texts=TEXTS[:1], targets=(1,))
    batch, x = ours(loaded, spec, texts=[TEXTS[0], TEXTS[1]], targets=(1, 0))
    length = alone.attributions.shape[1]
    assert x.shape[1] > length  # the first text was padded
    a, b = alone.attributions[0], batch.attributions[0, :length]
    # Occlusion scores are differences of logits: relative to those, as float32 rounding of either is.
    scale = alone.logits.abs().max() if method == "occlusion" else a.abs().max()
    assert ((a - b).abs().max() / scale) < 1e-5
    assert batch.attributions[0, length:].abs().max() == 0  # padding scores nothing


def test_rows_of_texts_of_different_lengths_share_a_pass_exactly(loaded):
    explainer, params = REGISTRY.parse("gradient", "text")
    short, long = (
        loaded.module.rows(rows(loaded, texts).x) for texts in (TEXTS[:1], TEXTS[1:])
    )  # as the device thread makes them
    from service.engine.plan import Rows

    def group(x):
        return Rows(len(x), lambda a, b: (x[a:b], torch.tensor([1])), lambda *_: None, input_grad=True)

    module = loaded.module
    together = run_pass(module, [(group(short), 0, 1), (group(long), 0, 1)], "logit")
    apart = [run_pass(module, [(group(x), 0, 1)], "logit")[0] for x in (short, long)]
    for shared, own in zip(together, apart, strict=True):
        assert shared.grads.shape == own.grads.shape
        torch.testing.assert_close(shared.grads, own.grads, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(shared.logits, own.logits, rtol=1e-5, atol=1e-6)
