"""Explaining on this thread in tests: a method's plan run by `service.engine.run`, the engine's one synchronous
entry point. `RunContext` adds the engine's options (objective, rows per pass) to the plan's context."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from service import engine
from service.engine.plan import Objective, targets_or_top
from service.explainers import ExplainContext, Explainer, Explanation, Params


@dataclass(frozen=True)
class RunContext(ExplainContext):
    objective: Objective = "logit"
    chunk_size: int = 64


def explain(
    explainer: Explainer, model: nn.Module, x: Tensor, targets: Tensor | None, params: Params, ctx: ExplainContext
) -> Explanation:
    """The method's explanation of rows x; targets None (or -1 entries) for each row's top class."""
    run = ctx if isinstance(ctx, RunContext) else RunContext()
    plan = explainer.plan(model, x, targets_or_top(targets, len(x), x.device), params, ctx)
    (result,) = engine.run(model, [plan], run.objective, chunk_size=run.chunk_size)
    assert isinstance(result, Explanation)
    return result
