"""Text classifiers: a transformers model and its tokenizer, wrapped so that the engine sees tensors of rows.

Token ids are discrete, so text methods attribute at the output of an embedding layer, as Captum's layer
methods do. A row is that layer's output for one text with two more features, the attention mask and the
token id: `(T, D + 2)`. Rows stay single tensors, so the scheduler packs and the executor pads them like
any other rows. `TextClassifier.forward` runs the model on the ids and mask while a hook replaces the layer's
output with the row's values, the values the methods move along a path, perturb or differentiate.

transformers is imported here only, when a text model is loaded (it slows start-up by seconds).
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from .loader import ModelLoadError
from .spec import ModelSpec

FEATURES_AFTER = 2  # mask and token id after the layer's values


class TextClassifier(nn.Module):
    """rows (N, T, D + 2) -> logits (N, K); the wrapped model's layer output is replaced by rows[..., :D]."""

    def __init__(self, model: nn.Module, layer_name: str):
        super().__init__()
        self.model = model
        self.layer_name = layer_name
        self.layer = model.get_submodule(layer_name)
        self._local = threading.local()  # the values of this thread's pass: load probes run on other threads
        self.layer.register_forward_hook(self._replace)

    def _replace(self, _module: nn.Module, _inputs: object, output: Tensor) -> Tensor | None:
        values = getattr(self._local, "values", None)
        return None if values is None else values.to(output.dtype)

    def forward(self, rows: Tensor) -> Tensor:
        values, mask, ids = split(rows)
        self._local.values = values
        try:
            return self.model(input_ids=ids, attention_mask=mask).logits
        finally:
            self._local.values = None

    @torch.inference_mode()
    def embed(self, ids: Tensor, mask: Tensor) -> Tensor:
        """The layer's output for these token ids: a lookup for an embedding table, else a captured forward."""
        if isinstance(self.layer, nn.Embedding):
            return self.layer(ids)
        captured: list[Tensor] = []
        handle = self.layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
        try:
            self.model(input_ids=ids, attention_mask=mask)
        finally:
            handle.remove()
        return captured[0]

    def rows(self, tokens: Tensor) -> Tensor:
        """Rows (N, T, D + 2) of token rows (N, T, 2) = (attention mask, token id): the layer's values by
        `embed`, which runs the model where the layer is not an embedding table, so it belongs on the
        device's thread (service.core.plans), not a codec's."""
        mask, ids = tokens[..., 0], tokens[..., 1].round().long()
        return rows_of(self.embed(ids, mask), mask, ids)


def token_rows(mask: Tensor, ids: Tensor) -> Tensor:
    """What the codec hands the engine: (N, T, 2), the attention mask and the token id of each token."""
    return torch.stack([mask.float(), ids.float()], dim=-1)


def split(rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(values, attention mask, token ids) of rows (N, T, D + 2)."""
    return rows[..., :-FEATURES_AFTER], rows[..., -2], rows[..., -1].round().long()


def rows_of(values: Tensor, mask: Tensor, ids: Tensor) -> Tensor:
    """The inverse of `split`: ids as floats are exact below 2**24, far above any vocabulary."""
    extra = torch.stack([mask.to(values.dtype), ids.to(values.dtype)], dim=-1)
    return torch.cat([values, extra], dim=-1)


def load(spec: ModelSpec) -> tuple[nn.Module, Any]:
    """(the transformers model in eval mode, its fast tokenizer), on the CPU; nothing is downloaded."""
    model, tokenizer = load_pair(spec, "AutoModelForSequenceClassification", "text model")
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions is not None and spec.max_length > positions:
        raise ModelLoadError(f"max_length {spec.max_length} is over the model's {positions} positions")
    labels = getattr(model.config, "num_labels", None)
    if labels != spec.num_classes:
        raise ModelLoadError(f"the model has {labels} labels; num_classes is {spec.num_classes}")
    return model.eval(), tokenizer


def embedding_layer_name(model: nn.Module, spec: ModelSpec) -> str:
    if spec.embedding_layer is not None:
        if spec.embedding_layer not in dict(model.named_modules()):
            raise ModelLoadError(f"embedding_layer {spec.embedding_layer!r} is not a module of the model")
        return spec.embedding_layer
    embeddings = cast(Any, model).get_input_embeddings()
    return next(name for name, module in model.named_modules() if module is embeddings)


def config_labels(model: nn.Module) -> list[str] | None:
    id2label = getattr(model.config, "id2label", None) or {}
    labels = [str(id2label.get(i, id2label.get(str(i), ""))) for i in range(len(id2label))]
    # transformers fills LABEL_0, LABEL_1, ... when a model was saved without names: those say nothing.
    return labels if labels and all(labels) and labels != [f"LABEL_{i}" for i in range(len(labels))] else None


def load_pair(spec: ModelSpec, auto_class: str, what: str) -> tuple[nn.Module, Any]:
    """(model, fast tokenizer) of a "transformers:DIR" (transformers' `auto_class` and AutoTokenizer, local files
    only) or a "python:pkg.mod:factory" returning both; a model that cannot load is a ModelLoadError naming why."""
    scheme, _, ref = spec.architecture.partition(":")
    try:
        if scheme == "transformers":
            import transformers

            if not Path(ref).is_dir():
                raise ModelLoadError(f"cannot load the {what}: directory not found", f"{ref} is not a directory")
            model = getattr(transformers, auto_class).from_pretrained(ref, local_files_only=True)
            tokenizer = transformers.AutoTokenizer.from_pretrained(ref, local_files_only=True)
        else:
            module_name, _, attr = ref.partition(":")
            model, tokenizer = getattr(importlib.import_module(module_name), attr)()
    except ModelLoadError:
        raise
    except Exception as exc:  # transformers raises anything from OSError to ValueError on a bad directory
        raise ModelLoadError(
            f"cannot load the {what}: {type(exc).__name__}", f"cannot load {spec.architecture!r}: {exc}"
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError("the tokenizer is not a fast tokenizer (character offsets are needed)")
    return model, tokenizer
