"""What the server says of its models: GET /v1/models (service/api/v1/models.py) and the commands' local mode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from .services import Services


@dataclass(frozen=True)
class ModelSummary:
    name: str
    kind: str
    architecture: str
    input_size: list[int] | None
    max_length: int | None
    num_classes: int
    labels: bool
    label_names: list[str] | None
    device: str
    state: str
    reason: str | None
    default_layer: str | None
    layers: list[str] | None
    layer_channels: dict[str, int] | None
    layer_layouts: dict[str, str] | None
    attention: str | None
    weights: bool
    preparation: list[str] | None


def public_architecture(architecture: str) -> str:
    """A TorchScript or transformers model by its file or directory name: the server's directory layout is
    not the client's business."""
    scheme, _, ref = architecture.partition(":")
    return f"{scheme}:{PurePath(ref).name}" if scheme in ("torchscript", "transformers") else architecture


def describe(services: Services, name: str) -> ModelSummary:
    """One configured model (an unknown name raises NotFound), as far as it is known without loading it."""
    spec = services.pool.spec(name)
    state, reason = services.pool.state(name)
    loaded = services.pool.peek(name)
    return ModelSummary(
        name=name,
        kind=spec.kind,
        architecture=public_architecture(spec.architecture),
        input_size=list(spec.input_size) if spec.kind not in ("text", "causal_lm") else None,
        max_length=spec.max_length if spec.kind in ("text", "causal_lm") else None,
        num_classes=spec.num_classes,
        labels=loaded.labels is not None if loaded else spec.labels is not None or spec.pretrained is not None,
        label_names=loaded.labels if loaded else None,  # a text model's come from its config, known once loaded
        device=str(services.pool.device),
        state=state,
        reason=reason,
        default_layer=loaded.default_layer if loaded else spec.target_layer,
        layers=[n for n, _ in loaded.layers] if loaded else None,
        layer_channels={n: shape[0] for n, shape in loaded.layers} if loaded else None,
        layer_layouts={n: layout.describe() for n, layout in loaded.layouts.items()} if loaded else None,
        attention=loaded.attention.describe() if loaded and loaded.attention else None,
        # A transformers directory holds its weights.
        weights=spec.weights is not None
        or spec.pretrained is not None
        or spec.architecture.startswith("transformers:"),
        preparation=loaded.prepared.notes if loaded and loaded.prepared else None,
    )
