"""The models this server is configured with, and their state."""

from __future__ import annotations

from pathlib import PurePath

from fastapi import APIRouter

from ..core import Services
from ..schemas import ErrorBody, ModelInfo
from .deps import ServicesDep

router = APIRouter(prefix="/v1/models", tags=["models"])


def public_architecture(architecture: str) -> str:
    """A TorchScript or transformers model by its file or directory name: the server's directory layout is
    not the client's business."""
    scheme, _, ref = architecture.partition(":")
    return f"{scheme}:{PurePath(ref).name}" if scheme in ("torchscript", "transformers") else architecture


def model_info(services: Services, name: str) -> ModelInfo:
    spec = services.pool.spec(name)
    state, reason = services.pool.state(name)
    loaded = services.pool.peek(name)
    return ModelInfo(
        name=name,
        kind=spec.kind,
        architecture=public_architecture(spec.architecture),
        input_size=list(spec.input_size) if spec.kind == "image" else None,
        max_length=spec.max_length if spec.kind == "text" else None,
        num_classes=spec.num_classes,
        labels=loaded.labels is not None if loaded else spec.labels is not None or spec.pretrained is not None,
        label_names=loaded.labels if loaded else None,  # a text model's come from its config, known once loaded
        device=str(services.pool.device),
        state=state,
        reason=reason,
        default_layer=loaded.default_layer if loaded else spec.target_layer,
        layers=[n for n, _ in loaded.layers] if loaded else None,
        # A text model's directory holds its weights.
        weights=spec.weights is not None or spec.pretrained is not None or spec.kind == "text",
        preparation=loaded.prepared.notes if loaded and loaded.prepared else None,
    )


@router.get("")
def list_models(services: ServicesDep) -> list[ModelInfo]:
    """Every configured model with its state."""
    return [model_info(services, name) for name in services.pool.specs]


@router.get("/{name}", responses={404: {"model": ErrorBody}})
def get_model(name: str, services: ServicesDep) -> ModelInfo:
    """One model: input size, classes and their labels, device, state, and the layers the CAM methods accept."""
    return model_info(services, name)
