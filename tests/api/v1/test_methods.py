"""GET /v1/methods: every registered method with its capabilities and parameter schema."""

from __future__ import annotations

import pytest

from service.explainers import default_registry

REGISTRY = default_registry()


@pytest.fixture(scope="module")
def methods(client) -> dict[str, dict]:
    response = client.get("/v1/methods")
    assert response.status_code == 200
    return {m["name"]: m for m in response.json()}


def test_lists_exactly_the_registered_methods(methods):
    assert list(methods) == REGISTRY.names()
    assert {"gradient", "smoothgrad", "integrated_gradients", "gradcam", "occlusion"} <= set(methods)


@pytest.mark.parametrize("name", REGISTRY.names())
def test_each_method_describes_itself(methods, name):
    info = methods[name]
    explainer = REGISTRY.get(name)
    assert info["description"] == explainer.description and info["description"]
    assert set(info["capabilities"]) == {
        "needs_gradients",
        "uses_layer",
        "convergence_delta",
        "multiplies_by_inputs",
        "output",
        "modalities",
        "guided_relu",
        "uses_target",
        "reads_attention",
        "boxes_per_row",
    }
    assert info["capabilities"]["modalities"] == list(explainer.capabilities.modalities)
    assert {"image", "detection"} & set(info["capabilities"]["modalities"])
    assert info["parameters"] == explainer.params_model.model_json_schema()
    assert info["parameters"]["type"] == "object"
    assert info["parameters"].get("additionalProperties") is False  # unknown parameters are refused
    passes = dict(info["passes_per_image"])
    per_channel = passes.pop("forward_per_layer_channel", 0)  # Score-CAM: one more pass per channel
    assert per_channel == explainer.cost(explainer.params_model(), (224, 224)).forward_per_channel
    assert passes == {"forward": passes["forward"], "backward": passes["backward"]} and passes["forward"] >= 1
    # Backward passes exactly when the method needs gradients.
    assert (passes["backward"] > 0) == info["capabilities"]["needs_gradients"]


def test_capabilities_tell_the_methods_apart(methods):
    assert methods["gradcam"]["capabilities"] == {
        "needs_gradients": True,
        "uses_layer": True,
        "convergence_delta": False,
        "multiplies_by_inputs": False,
        "output": "cam",
        "modalities": ["image", "detection"],
        "guided_relu": False,
        "uses_target": True,
        "reads_attention": False,
        "boxes_per_row": False,
    }
    assert methods["drise"]["capabilities"]["modalities"] == ["detection"]
    assert methods["drise"]["capabilities"]["boxes_per_row"] is True
    assert methods["gradcam_pp"]["capabilities"]["modalities"] == ["image"]  # not (yet) for detectors
    assert methods["guided_backprop"]["capabilities"]["guided_relu"] is True
    assert methods["attention_rollout"]["capabilities"]["reads_attention"] is True
    assert methods["attention_rollout"]["capabilities"]["uses_target"] is False
    assert methods["attention_relevance"]["passes_per_image"] == {"forward": 1, "backward": 1}
    assert methods["integrated_gradients"]["capabilities"]["convergence_delta"] is True
    assert methods["integrated_gradients"]["capabilities"]["multiplies_by_inputs"] is True
    assert methods["occlusion"]["capabilities"]["needs_gradients"] is False
    assert methods["occlusion"]["passes_per_image"]["backward"] == 0
    # The forward-only CAMs: Score-CAM's passes scale with the layer's channels; Eigen-CAM has no target.
    assert methods["scorecam"]["passes_per_image"] == {"forward": 1, "backward": 0, "forward_per_layer_channel": 1}
    assert methods["eigencam"]["passes_per_image"] == {"forward": 1, "backward": 0}
    for name in ("scorecam", "eigencam"):
        capabilities = methods[name]["capabilities"]
        assert (capabilities["needs_gradients"], capabilities["uses_layer"], capabilities["output"]) == (
            False,
            True,
            "cam",
        )
        assert capabilities["modalities"] == (["image", "detection"] if name == "eigencam" else ["image"])
        assert methods[name]["parameters"] == methods["gradcam"]["parameters"]  # `layer`, as every CAM
    assert methods["eigencam"]["capabilities"]["uses_target"] is False
    assert methods["scorecam"]["capabilities"]["uses_target"] is True


def test_parameter_schemas_carry_defaults_and_bounds(methods):
    steps = methods["integrated_gradients"]["parameters"]["properties"]["steps"]
    assert (steps["default"], steps["minimum"], steps["maximum"]) == (50, 1, 4096)
    assert methods["integrated_gradients"]["passes_per_image"] == {"forward": 52, "backward": 50}
    assert methods["smoothgrad"]["parameters"]["properties"]["samples"]["default"] == 25
    assert "layer" in methods["gradcam"]["parameters"]["properties"]
    assert methods["gradient"]["parameters"].get("properties", {}) == {}
