"""Cascading randomization of a model copy, from the output layer down, one top-level block at a time."""

from __future__ import annotations

import torch
from torch import nn

from ...models import LoadedModel
from ...models.detection import Detector
from ...models.layers import is_attention_block
from ...models.text import TextClassifier
from ...models.zoo import HubClassifier


def user_model(module: nn.Module) -> nn.Module:
    """The model as its author wrote it: a text model's wrapper (rows -> logits) and a Hugging Face image
    classifier's (pixels -> logits) are ours, not theirs."""
    return module.model if isinstance(module, (TextClassifier, HubClassifier)) else module


def blocks(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's top-level children that hold parameters, last (nearest the output) first. A child that
    holds a transformer's repeated blocks is opened, so that the blocks are randomized one at a time as a
    CNN's stages are (Adebayo et al. randomize layer by layer); the child itself comes after its parts, for
    the parameters it holds directly (a ViT's position embedding). Parameters of the model itself (a ViT's
    class token) are not randomized."""
    if isinstance(module, Detector):
        return list(reversed(detector_blocks(module)))
    return untied(list(reversed(opened(user_model(module), ""))))


def untied(cascade: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
    """Without the blocks whose every parameter is also a block's nearer the input: a language model's head
    tied to its token embedding (GPT-2's lm_head) is re-drawn with the embedding, where the weight first
    acts, not as the first step (which would randomize the embedding with the head)."""
    out = []
    for i, (name, block) in enumerate(cascade):
        # Not counting the block's own containers (a ViT's encoder, re-drawn after its parts for its position
        # embedding): they hold its parameters without tying them.
        later = {
            id(p)
            for other_name, other in cascade[i + 1 :]
            if not name.startswith(f"{other_name}.")
            for p in other.parameters()
        }
        if not all(id(p) in later for p in block.parameters()):
            out.append((name, block))
    return out


OPENED_STAGES = 8  # a backbone's feature extractor with more parts (MobileNet's 17 layers) is one step


def detector_blocks(detector: Detector) -> list[tuple[str, nn.Module]]:
    """A detector's parts in forward order: each top-level child (backbone, heads) split into its parts
    (`rpn.head`, `roi_heads.box_head`, `roi_heads.box_predictor`; `backbone.fpn`), and the backbone's trunk
    (its first part) into its stages when it has a few (`backbone.body.layer4`, ...), as a CNN's are."""
    out: list[tuple[str, nn.Module]] = []
    for name, child in with_parameters(detector):
        parts = with_parameters(child)
        if not parts or any(True for _ in child.parameters(recurse=False)):
            out.append((name, child))
            continue
        for k, (part_name, part) in enumerate(parts):
            stages = with_parameters(part) if name == "backbone" and k == 0 else []  # the trunk, not the FPN
            if 1 < len(stages) <= OPENED_STAGES and not any(True for _ in part.parameters(recurse=False)):
                out += [(f"{name}.{part_name}.{stage}", module) for stage, module in stages]
            else:
                out.append((f"{name}.{part_name}", part))
    return out


def with_parameters(module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, child) for name, child in module.named_children() if any(True for _ in child.parameters())]


def opened(parent: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    out: list[tuple[str, nn.Module]] = []
    for name, child in parent.named_children():
        if not any(True for _ in child.parameters()):
            continue
        if holds_blocks(child):
            # Its own parameters (a ViT's position embedding) act before its parts: randomized after them,
            # with them (re-drawing its already random parts too).
            if any(True for _ in child.parameters(recurse=False)):
                out.append((f"{prefix}{name}", child))
            out += opened(child, f"{prefix}{name}.")
        else:
            out.append((f"{prefix}{name}", child))
    return out


def holds_blocks(module: nn.Module) -> bool:
    """Whether the transformer blocks of a model are among this module's descendants (not itself one)."""
    return any(is_attention_block(module, name) for name, _ in module.named_modules() if name)


def fresh_copy(loaded: LoadedModel) -> nn.Module:
    """A new instance of the served model with the served parameters, in eval mode on the model's device.

    Built anew from the spec rather than deep-copied: a deep copy taken while the device thread runs a pass
    would copy that pass's temporary hooks along with the model. The served module is only read.
    """
    from ...models import build

    served = loaded.prepared.original if loaded.prepared is not None else loaded.module
    if loaded.kind == "causal_lm":
        from ...models import causal_lm

        assert isinstance(served, causal_lm.CausalLM)
        model, _ = causal_lm.load(loaded.spec)
        copy: nn.Module = causal_lm.CausalLM(model, served.layer_name, served.max_length)
    elif loaded.kind == "text":
        from ...models import text as text_models

        assert isinstance(served, TextClassifier)
        model, _ = text_models.load(loaded.spec)
        copy = TextClassifier(model, served.layer_name)
    elif isinstance(served, Detector):
        copy = Detector(build.loader.load(loaded.spec), served.candidates)
    else:
        copy = build.loader.load(loaded.spec)
    copy.load_state_dict(served.state_dict())
    return copy.to(loaded.device).eval()


@torch.no_grad()
def randomize(block: nn.Module, seed: int) -> None:
    """Re-initializes every parameter of `block` as its module's own initializer does (Quantus's choice);
    parameters of modules without `reset_parameters` are drawn from a normal of their own spread. BatchNorm
    running statistics are reset too. Seeded: the same request gives the same randomized model."""
    with torch.random.fork_rng(devices=[p.device for p in block.parameters() if p.is_cuda][:1]):
        torch.manual_seed(seed)
        covered: set[int] = set()
        for module in block.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.reset_running_stats()
                covered.update(id(p) for p in module.parameters(recurse=False))
        for parameter in block.parameters():
            if id(parameter) not in covered:
                spread = float(parameter.float().std()) if parameter.numel() > 1 else 0.0
                parameter.normal_(0.0, spread if spread > 0 else 0.02)
