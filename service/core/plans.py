"""A request's methods as the engine's plans, on the model's device: what the core submits to the runner
and what scripts run with `service.engine.run`.

Plans are built on the device thread (the runner calls `build` there): moving the inputs, a text's
embedding forward and the text space's pad and mask values are device work, not the event loop's or a
codec thread's.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..engine import run
from ..engine.plan import Objective, Plan, clean_rows, targets_or_top
from ..engine.runner import EngineRunner, Progress, Reservation, chunk_rows
from ..explainers import ExplainContext, Explainer, Explanation, Params, PixelSpace
from ..explainers.faithfulness import EvaluateSpec, evaluated
from ..explainers.postprocess import Reduce
from ..explainers.text_space import TextSpace
from ..models import LoadedModel
from ..models.causal_lm import pad_id
from ..models.text import TextClassifier
from ..settings import Settings
from .rows import count_rows

Method = tuple[Explainer, Params]
Evaluation = tuple[EvaluateSpec, list[Reduce]]  # the metrics; per method, the reduction that ranks its map


def pass_module(loaded: LoadedModel, methods: list[Method]) -> nn.Module:
    """The prepared module the request's passes run on: eager where a layer is hooked, the unfolded model
    where that layer is a convolution that absorbed a BatchNorm (its own output changed)."""
    layers = {getattr(p, "layer", None) or loaded.default_layer or "" for e, p in methods if e.capabilities.uses_layer}
    if any(e.capabilities.reads_attention for e, _ in methods):
        layers.add("")  # eager: a compiled graph would not call the attention function the capture wraps
    return loaded.module_for(layers)


def model_rows(loaded: LoadedModel, x: Tensor, module: nn.Module | None = None) -> Tensor:
    """The codec's rows as the model's input rows, on its device: a text's token ids (N, T, 2) become their
    values at the attributed layer (N, T, D + 2) by the embedding forward (models/text.py) of the module the
    passes run on (a randomized copy's own embedding, in the sanity checks)."""
    x = x.to(loaded.device)
    if loaded.kind not in ("text", "causal_lm"):
        return x
    module = module if isinstance(module, TextClassifier) else loaded.module
    assert isinstance(module, TextClassifier)
    return module.rows(x)


def predict_plan(x: Tensor) -> Plan:
    out = yield from clean_rows(x, targets_or_top(None, len(x), x.device))
    return out.logits.float().cpu()


def explain_plans(
    loaded: LoadedModel,
    module: nn.Module,
    methods: list[Method],
    x: Tensor,
    targets: Tensor,
    evaluate: Evaluation | None = None,
) -> list[Plan]:
    """The methods' plans over the codec's rows `x`; with `evaluate` (the metrics and the map's reduction)
    each goes on to its faithfulness curves. Runs the model (a text's embedding): on the device's thread."""
    spec = loaded.spec
    text = text_space(loaded, module) if loaded.kind in ("text", "causal_lm") else None
    pixels = PixelSpace(spec.mean, spec.std)
    ctx = ExplainContext(
        pixel_space=pixels,
        layer=loaded.default_layer,
        layouts=loaded.layouts,
        refused_layers=loaded.refused_layers,
        attention=loaded.attention or loaded.attention_issue,
        text=text,
    )
    x, targets = model_rows(loaded, x, module), targets.to(loaded.device)
    plans = [e.plan(module, x, targets, p, ctx) for e, p in methods]
    if evaluate is not None:
        space = text if text is not None else pixels
        plans = [evaluated(plan, x, space, how, evaluate[0]) for plan, how in zip(plans, evaluate[1], strict=True)]
    return [to_cpu(plan) for plan in plans]


def text_space(loaded: LoadedModel, module: nn.Module | None = None) -> TextSpace:
    """The pad and mask tokens' values at the attributed layer (of `module`, a copy, where given), and the
    special ids, of a text model."""
    tokenizer = loaded.tokenizer
    ids = [pad_id(tokenizer), tokenizer.mask_token_id]  # a causal LM may have no pad token (GPT-2): its eos
    known = torch.tensor([[i if i is not None else ids[0] for i in ids]], device=loaded.device)
    module = module if isinstance(module, TextClassifier) else loaded.module
    assert isinstance(module, TextClassifier)
    values = module.embed(known, torch.ones_like(known))[0].clone()
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
    return TextSpace(values[0], values[1] if ids[1] is not None else None, special)


def to_cpu(plan: Plan) -> Plan:
    """The plan's result as float32 CPU tensors, made on the device thread."""
    result = yield from plan
    assert isinstance(result, Explanation)
    return Explanation(
        result.attributions.detach().float().cpu(),
        result.logits.float().cpu(),
        result.targets.cpu(),
        {k: v.cpu() for k, v in result.diagnostics.items()},
        result.faithfulness,
    )


async def explain(
    runner: EngineRunner,
    loaded: LoadedModel,
    methods: list[Method],
    x: Tensor,
    targets: Tensor,
    objective: Objective,
    progress: Progress | None = None,
    evaluate: Evaluation | None = None,
    module: nn.Module | None = None,
    reservation: Reservation | None = None,
) -> list[Explanation]:
    """One explanation per method, of the same rows, through the device's scheduler; methods that can share
    passes do. `module`: another instance of the model (the sanity checks' randomized copy)."""
    shape = (x.shape[1],) if loaded.kind == "text" else None  # progress counts a text's own tokens
    rows = count_rows(loaded, methods, len(x), evaluate[0] if evaluate else None, shape).total
    module = module if module is not None else pass_module(loaded, methods)
    results = await runner.submit(
        loaded, module, lambda: explain_plans(loaded, module, methods, x, targets, evaluate), objective, rows,
        progress, reservation, extra_row_bytes(loaded, methods),
    )  # fmt: skip
    return results  # type: ignore[return-value]


def extra_row_bytes(loaded: LoadedModel, methods: list[Method]) -> int:
    """Memory a row of these methods takes beyond the model's measured row: the captured attention."""
    reads = any(e.capabilities.reads_attention for e, _ in methods)
    return loaded.attention.row_bytes if reads and loaded.attention is not None else 0


async def predict(
    runner: EngineRunner, loaded: LoadedModel, x: Tensor, reservation: Reservation | None = None
) -> Tensor:
    def build() -> list[Plan]:
        return [predict_plan(model_rows(loaded, x))]

    (logits,) = await runner.submit(loaded, loaded.module_for(set()), build, "logit", len(x), None, reservation)
    return logits  # type: ignore[return-value]


def explain_here(
    loaded: LoadedModel,
    explainer: Explainer,
    params: Params,
    x: Tensor,
    targets: Tensor,
    objective: Objective,
    settings: Settings,
    evaluate: Evaluation | None = None,
) -> Explanation:
    """One method's explanation as the server computes it (the prepared module, the device's pass size),
    on this thread through `service.engine.run`: for scripts, benchmarks and tests."""
    methods: list[Method] = [(explainer, params)]
    module = pass_module(loaded, methods)
    plans = explain_plans(loaded, module, methods, x, targets, evaluate)
    (result,) = run(
        module,
        plans,
        objective,
        chunk_size=chunk_rows(loaded, settings, extra_row_bytes(loaded, [(explainer, params)])),
        channels_last=settings.channels_last,
        autocast=settings.autocast,
        device=loaded.device,
    )
    assert isinstance(result, Explanation)
    return result
