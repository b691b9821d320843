"""Runs one chunk on the device: builds its rows, one pass, the gradients its rows asked for.

Device work only: which rows share the chunk is the scheduler's decision (policy.py). Gradients come from
`torch.autograd.grad` with respect to the input and the hooked layers only, so the served model's parameters
never collect `.grad`; forward-only chunks run under `torch.inference_mode()`.
"""

from __future__ import annotations

from contextlib import ExitStack, nullcontext
from typing import Any, cast

import torch
from torch import Tensor, nn

from ..models.attention import capture_attention
from .hooks import capture_outputs, find_module, guided_relus
from .plan import ATTENTION_NEEDS, AttentionNeed, PassOutput, Rows, Scoring, resolve, score

AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def device_context(device: torch.device, autocast: str):
    if autocast != "off" and device.type == "cuda":
        return torch.autocast("cuda", dtype=AUTOCAST[autocast])
    return nullcontext()


def run_pass(
    module: nn.Module,
    parts: list[tuple[Rows, int, int]],
    objective: Scoring,
    channels_last: bool = False,
) -> list[PassOutput]:
    """One forward (and backward where any part needs it) over the parts' rows; one output per part."""
    built = [rows.make(start, stop) for rows, start, stop in parts]
    lengths = [inputs.shape[1] for inputs, _ in built]
    x = torch.cat(padded([inputs for inputs, _ in built], max(lengths)))
    targets = torch.cat([t for _, t in built])
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    input_grad = any(rows.input_grad for rows, _, _ in parts)
    layers = tuple(dict.fromkeys(layer for rows, _, _ in parts for layer in rows.layers))
    recorded = tuple(dict.fromkeys(layer for rows, _, _ in parts for layer in rows.activations))
    guided = any(rows.guided for rows, _, _ in parts)  # the scheduler packs guided rows only together
    attention = max((rows.attention for rows, _, _ in parts), key=ATTENTION_NEEDS.index)
    if input_grad or layers or attention:
        out = backward_pass(module, x, targets, objective, input_grad, layers, guided, recorded, attention)
    else:  # the scheduler packs cached rows only together (policy.pass_key)
        out = forward_pass(module, x, targets, objective, recorded, parts[0][0].cached)
    results, offset = [], 0
    for (_, start, stop), length in zip(parts, lengths, strict=True):
        results.append(out.rows(offset, offset + stop - start, length))
        offset += stop - start
    return results


def padded(inputs: list[Tensor], length: int) -> list[Tensor]:
    """Text rows (N, T, F) of texts of different lengths, padded to one length with zero rows: their mask
    feature is 0, so the model attends to none of them (models/text.py). Image rows all have one shape."""
    if all(i.shape[1] == length for i in inputs) or inputs[0].dim() != 3:
        return inputs
    return [torch.nn.functional.pad(i, (0, 0, 0, length - i.shape[1])) for i in inputs]


def forward_pass(
    module: nn.Module,
    x: Tensor,
    targets: Tensor,
    objective: Scoring,
    recorded: tuple[str, ...] = (),
    cached: bool = False,
) -> PassOutput:
    """`recorded`: layers whose outputs the pass returns (forward-only CAM methods); `cached`: KV-cached
    generation rows, through the module's `cached` (models/kv_cache.py)."""
    with ExitStack() as stack, torch.inference_mode():
        captured = {name: stack.enter_context(capture_outputs(find_module(module, name))) for name in recorded}
        logits = cast(Any, module).cached(x) if cached else module(x)
        resolved = resolve(logits, targets)
        scores = score(logits, resolved, objective)
    # Clones leave inference mode: plans keep these tensors and use them in later (autograd) passes.
    activations = {name: outs[-1].clone() for name, outs in captured.items() if outs}
    return PassOutput(logits.clone(), resolved.clone(), scores.clone(), activations=activations)


def backward_pass(
    module: nn.Module,
    x: Tensor,
    targets: Tensor,
    objective: Scoring,
    input_grad: bool,
    layers: tuple[str, ...],
    guided: bool = False,
    recorded: tuple[str, ...] = (),
    attention: AttentionNeed = "",
) -> PassOutput:
    """dS/dx if `input_grad`, and the outputs of `layers` with dS/d(output); `recorded` layers' outputs only;
    the attention probabilities (with dS/d(them) for "gradients"). Attention is captured with autograd on
    even without a backward: nn.MultiheadAttention's inference fast path would hide it (engine/attention.py)."""
    with ExitStack() as stack, torch.enable_grad():
        if guided:
            stack.enter_context(guided_relus(module))
        attentions = stack.enter_context(capture_attention()) if attention else []
        hooked = tuple(dict.fromkeys(layers + recorded))
        captured = {name: stack.enter_context(capture_outputs(find_module(module, name))) for name in hooked}
        # The input requires grad even for layer-only passes, so that the layers' outputs are in the graph
        # when the model's weights are frozen.
        xr = x.detach().requires_grad_(True)
        logits = module(xr)
        resolved = resolve(logits, targets)
        scores = score(logits, resolved, objective)
        activations = {name: outs[-1] for name, outs in captured.items() if outs}
        differentiated = [name for name in layers if name in activations]
        wrt = ([xr] if input_grad else []) + [activations[name] for name in differentiated]
        wanted = attentions if attention == "gradients" else []
        grads = list(torch.autograd.grad(scores.sum(), wrt + wanted)) if wrt or wanted else []
    input_grads = grads.pop(0) if input_grad else None
    layer_grads = dict(zip(differentiated, grads[: len(differentiated)], strict=True))
    return PassOutput(
        logits.detach(),
        resolved,
        scores.detach(),
        input_grads,
        {k: v.detach() for k, v in activations.items()},
        layer_grads,
        [a.detach() for a in attentions],
        grads[len(differentiated) :],
    )
