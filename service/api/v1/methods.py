"""The explanation methods, their capabilities and parameter schemas."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import ServicesDep
from .schemas import MethodInfo

router = APIRouter(prefix="/v1/methods", tags=["methods"])


@router.get("")
def list_methods(services: ServicesDep) -> list[MethodInfo]:
    """Every method with its description, capabilities and the JSON schema of its parameters."""
    out = []
    for explainer in services.registry:
        cost = explainer.cost(explainer.params_model(), (224, 224))
        passes = {"forward": cost.forward, "backward": cost.backward}
        if cost.forward_per_channel:  # Score-CAM: the layer's channel count is the model's
            passes["forward_per_layer_channel"] = cost.forward_per_channel
        out.append(
            MethodInfo(
                name=explainer.name,
                description=explainer.description,
                capabilities=explainer.capabilities,
                passes_per_image=passes,
                parameters=explainer.params_model.model_json_schema(),
                text_parameters=explainer.params_for("text").model_json_schema()
                if "text" in explainer.capabilities.modalities
                else None,
            )
        )
    return out
