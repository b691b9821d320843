"""Eigen-CAM: pytorch-grad-cam's projection bit for bit (its SVD sign included), one forward pass, no target."""

import numpy as np
import pytest
import torch
from explaining import explain

from service.explainers import ExplainContext
from service.explainers.eigencam import first_component

svd_on_activations = pytest.importorskip("pytorch_grad_cam.utils.svd_on_activations")

# (channels, h, w): more positions than channels (numpy's reduced SVD then skips pytorch-grad-cam's
# (h*w)^2 matrix U), fewer, and about as many
SHAPES = [(8, 16, 16), (16, 8, 8), (512, 2, 2), (64, 7, 7), (3, 40, 40), (100, 10, 10)]


@pytest.mark.parametrize("shape", SHAPES)
def test_projection_is_pytorch_grad_cams_sign_included(shape):
    rng = np.random.default_rng(sum(shape))
    # ReLU'd feature maps with a per-channel offset: a skewed projection, so its sign shows after the ReLU
    batch = np.maximum(rng.standard_normal((4, *shape)) + rng.standard_normal((4, shape[0], 1, 1)), 0)
    batch = batch.astype(np.float32)
    expected = svd_on_activations.get_2d_projection(batch)
    ours = first_component(torch.from_numpy(batch)).numpy()
    np.testing.assert_array_equal(ours, expected)
    flipped = np.maximum(-expected, 0)
    assert all(not np.allclose(np.maximum(e, 0), f) for e, f in zip(expected, flipped, strict=True))


def test_nan_activations_count_as_zero_as_in_pytorch_grad_cam():
    batch = np.random.default_rng(1).standard_normal((1, 6, 5, 5)).astype(np.float32)
    batch[0, 2, 1:3] = np.nan
    zeroed = np.nan_to_num(batch, nan=0.0)
    ours = first_component(torch.from_numpy(batch)).numpy()
    np.testing.assert_array_equal(ours, svd_on_activations.get_2d_projection(zeroed))
    assert np.isfinite(ours).all()


def test_rank_one_activations_project_onto_their_spatial_pattern():
    """A[k, p] = u_k v_p + c_k: centred, every position is (v_p - mean v) u, so the projection is +-|u| that."""
    u, v, c = torch.tensor([3.0, -1.0, 2.0]), torch.linspace(0, 1, 16), torch.tensor([5.0, 1.0, -2.0])
    activations = (u[:, None] * v[None, :] + c[:, None]).view(1, 3, 4, 4)
    projection = first_component(activations)[0].flatten()
    expected = u.norm() * (v - v.mean())
    torch.testing.assert_close(projection.abs(), expected.abs(), rtol=1e-5, atol=1e-6)
    assert torch.allclose(projection, expected, atol=1e-5) or torch.allclose(projection, -expected, atol=1e-5)


def test_one_forward_pass_without_autograd_and_the_same_map_for_every_target(registry, pass_log):
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    explainer, params = registry.parse({"name": "eigencam", "layer": "model.3"})
    first = explain(explainer, pass_log, x, torch.tensor([1, 3]), params, ExplainContext())
    assert pass_log.passes == [(2, True)]  # the clean pass only, under inference mode
    other = explain(explainer, pass_log, x, torch.tensor([4, 0]), params, ExplainContext())
    assert torch.equal(first.attributions, other.attributions)
    assert other.targets.tolist() == [4, 0]  # the response still names the class asked for
    assert not explainer.capabilities.uses_target and not explainer.capabilities.needs_gradients
