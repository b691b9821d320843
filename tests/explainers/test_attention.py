"""The attention methods against direct implementations of their papers, and the capture they rest on.

The references compute each block's attention written out from its nn.MultiheadAttention's projections
(not the fused kernel the capture wraps), so they share no code with models/attention.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import Tensor, nn

from service.errors import InvalidParameter
from service.models.attention import capture_attention
from service.models.zoo import HubClassifier
from tests.explaining import RunContext, explain
from tests.vits import tiny_hf_vit

timm = pytest.importorskip("timm")


@pytest.fixture(scope="module")
def vit() -> nn.Module:
    """A tiny torchvision ViT, 32 px, 4x4 patches of 8 px, a class token; a head that is not all zeros."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = torchvision.models.VisionTransformer(
            32, 8, num_layers=3, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=5
        )
        nn.init.normal_(model.heads.head.weight, std=0.5)
        return model.eval()


@pytest.fixture(scope="module")
def x() -> Tensor:
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def reference_attention(model: nn.Module, x: Tensor, target: Tensor | None = None):
    """Per block, (N, heads, T, T) probabilities, with dS/dA where a target is given."""
    weights: list[Tensor] = []
    handles = []
    for block in model.encoder.layers:
        attention = block.self_attention

        def forward(query, key, value, need_weights=False, _mha=attention, **kwargs):
            # The block's attention written out: projections, softmax(QK^T / sqrt(d)), A V, output projection.
            batch, tokens, width = query.shape
            heads = _mha.num_heads
            q, k, v = nn.functional.linear(query, _mha.in_proj_weight, _mha.in_proj_bias).chunk(3, dim=-1)
            q, k, v = (t.reshape(batch, tokens, heads, width // heads).transpose(1, 2) for t in (q, k, v))
            a = (q @ k.transpose(-2, -1) / (width // heads) ** 0.5).softmax(dim=-1)
            a.retain_grad()
            weights.append(a)
            return _mha.out_proj((a @ v).transpose(1, 2).reshape(batch, tokens, width)), None

        attention.forward = forward
        handles.append(attention)
    try:
        with torch.enable_grad():
            logits = model(x.clone().requires_grad_(True))
            if target is not None:
                logits.gather(1, target[:, None]).sum().backward()
    finally:
        for attention in handles:
            del attention.forward
    return [w.detach() for w in weights], [w.grad for w in weights] if target is not None else None


def paper_rollout(attentions: list[Tensor], fusion: str, discard: float) -> np.ndarray:
    """Abnar & Zuidema's rollout, one image at a time, in numpy; the class token's row over the patches."""
    out = []
    for i in range(attentions[0].shape[0]):
        tokens = attentions[0].shape[-1]
        result = np.eye(tokens)
        for a in attentions:
            heads = a[i].double().numpy()
            fused = {"mean": heads.mean(0), "max": heads.max(0), "min": heads.min(0)}[fusion]
            flat = fused.reshape(-1).copy()
            drop = np.argsort(flat, kind="stable")[: int(flat.size * discard)]
            flat[drop[drop != 0]] = 0
            a_hat = (flat.reshape(tokens, tokens) + np.eye(tokens)) / 2
            result = (a_hat / a_hat.sum(axis=1, keepdims=True)) @ result
        out.append(result[0, 1:])
    return np.stack(out)


def paper_relevance(attentions: list[Tensor], grads: list[Tensor]) -> np.ndarray:
    """Chefer et al. 2021, eq. (5)-(6): R += mean_h((grad * A)^+) R, per image, in numpy."""
    out = []
    for i in range(attentions[0].shape[0]):
        result = np.eye(attentions[0].shape[-1])
        for a, g in zip(attentions, grads, strict=True):
            cam = np.clip(g[i].double().numpy() * a[i].double().numpy(), 0, None).mean(0)
            result = result + cam @ result
        out.append(result[0, 1:])
    return np.stack(out)


def token_maps(explanation) -> np.ndarray:
    """The 4x4 patch values back from a map upsampled to 32 px: the map is bilinear in them, so compare
    the map with the reference upsampled the same way instead."""
    return explanation.attributions.numpy()


def upsampled(patches: np.ndarray) -> np.ndarray:
    grid = torch.from_numpy(patches).float().view(-1, 1, 4, 4)
    return torch.nn.functional.interpolate(grid, size=(32, 32), mode="bilinear", align_corners=False)[:, 0].numpy()


@pytest.mark.parametrize(("fusion", "discard"), [("mean", 0.0), ("max", 0.0), ("min", 0.0), ("mean", 0.5)])
def test_rollout_is_the_papers(registry, vit, x, fusion, discard):
    attentions, _ = reference_attention(vit, x)
    method, params = registry.parse({"name": "attention_rollout", "head_fusion": fusion, "discard_ratio": discard})
    result = explain(method, vit, x, None, params, RunContext())
    np.testing.assert_allclose(token_maps(result), upsampled(paper_rollout(attentions, fusion, discard)), atol=1e-5)


def test_relevance_is_chefers(registry, vit, x):
    targets = torch.tensor([0, 3, 4])
    attentions, grads = reference_attention(vit, x, targets)
    method, params = registry.parse({"name": "attention_relevance"})
    result = explain(method, vit, x, targets, params, RunContext())
    expected = upsampled(paper_relevance(attentions, grads))
    np.testing.assert_allclose(token_maps(result), expected, rtol=1e-4, atol=1e-6)
    other = explain(method, vit, x, torch.tensor([1, 1, 1]), params, RunContext())
    assert not np.allclose(token_maps(other), expected, atol=1e-4)  # it explains the class asked for


@pytest.mark.parametrize("source", ["torchvision", "timm", "transformers"])
def test_capturing_attention_changes_no_output_nor_gradient(vit, source):
    model = {
        "torchvision": lambda: vit,
        "timm": lambda: timm.create_model("test_vit", num_classes=3).eval(),
        "transformers": lambda: HubClassifier(tiny_hf_vit()),
    }[source]()
    size = 160 if source == "timm" else 32
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2), requires_grad=True)
    logits = model(x)
    (grad,) = torch.autograd.grad(logits[:, 0].sum(), x)
    with capture_attention() as maps:
        captured = model(x)
        grads = torch.autograd.grad(captured[:, 0].sum(), [x, *maps])
    assert maps and all(m.dim() == 4 for m in maps)
    assert torch.equal(captured, logits) and torch.equal(grads[0], grad)  # bit for bit
    assert all(g.abs().sum() > 0 for g in grads[1:])  # and dS/dA reached every block


def test_captured_probabilities_are_multihead_attentions(vit, x):
    expected, _ = reference_attention(vit, x)
    with torch.enable_grad(), capture_attention() as maps:
        vit(x.clone().requires_grad_(True))
    assert len(maps) == len(expected)
    for got, want in zip(maps, expected, strict=True):
        torch.testing.assert_close(got.detach(), want, atol=1e-6, rtol=1e-5)


def test_models_without_reachable_attention_are_refused_with_the_reason(registry):
    swin = torchvision.models.swin_t(num_classes=3).eval()
    cnn = torchvision.models.resnet18(num_classes=3).eval()
    for model, size in ((swin, 224), (cnn, 64)):
        for name in ("attention_rollout", "attention_relevance"):
            method, params = registry.parse(name)
            with pytest.raises(InvalidParameter, match="no attention probabilities reached"):
                explain(method, model, torch.zeros(1, 3, size, size), None, params, RunContext())
