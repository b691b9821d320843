"""A method's plan for a causal LM: one row of prompt-token scores per answer token.

The rows of a text are its prompt and answer (models/causal_lm.py: roles 1 and 2), and answer token j's
score is the log-probability column of its position. Gradient methods run their own plan on one row per
(text, answer token), as Captum's LLMGradientAttribution calls its method once per target token: the
prompt's tokens are the ones moved along a path or ablated (role 1), the answer is teacher-forced (role
2). With `include_generated`, answer token j's row scores the answer tokens before it too (role 1 there).
Occlusion needs no row per answer token: one pass with a window ablated gives every answer token's
log-probability, so its rows are one per (text, window), as Captum's LLMAttribution with FeatureAblation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..engine.plan import PassOutput, Plan, Rows, clean_rows
from ..models.causal_lm import PROMPT
from .base import ExplainContext, Explainer, Explanation, Params
from .faithfulness import EvaluateSpec, auc, curve, ranking, text_positions
from .postprocess import Reduce
from .text_occlusion import token_windows
from .text_space import TextSpace


def answer_rows(x: Tensor, answers: list[tuple[int, int]], include_generated: bool) -> tuple[Tensor, Tensor, Tensor]:
    """(rows (R, T, D + 2), their target columns (R,), the text of each row (R,)): per text i with its answer at
    positions start..start + length, one row per answer token, text-major."""
    texts: list[int] = []
    columns: list[int] = []
    for i, (start, length) in enumerate(answers):
        texts += [i] * length
        columns += range(start, start + length)
    text = torch.tensor(texts, dtype=torch.long, device=x.device)
    column = torch.tensor(columns, dtype=torch.long, device=x.device)
    rows = x[text].clone()
    if include_generated:  # the answer tokens before each row's own are scored as the prompt's are
        starts = torch.tensor([s for s, _ in answers], device=x.device)[text]
        positions = torch.arange(x.shape[1], device=x.device)
        earlier = (positions[None] >= starts[:, None]) & (positions[None] < column[:, None])
        rows[..., -2] = torch.where(earlier, torch.full_like(rows[..., -2], PROMPT), rows[..., -2])
    return rows, column, text


def answer_plan(
    explainer: Explainer,
    model: nn.Module,
    x: Tensor,
    answers: list[tuple[int, int]],
    params: Params,
    ctx: ExplainContext,
    include_generated: bool = False,
) -> Plan:
    """x (N, T, D + 2) each text's prompt and answer -> attributions (R, T, ...) one row per answer token
    (text-major), logits (R, L + V) of the unperturbed rows, targets (R,) the answer tokens' columns."""
    if explainer.name == "occlusion":
        return (yield from occlusion_plan(x, answers, params, ctx, include_generated))
    rows, columns, _ = answer_rows(x, answers, include_generated)
    return (yield from explainer.plan(model, rows, columns, params, ctx))


def occlusion_plan(
    x: Tensor, answers: list[tuple[int, int]], params, ctx: ExplainContext, include_generated: bool
) -> Plan:
    """Each window of scored tokens replaced by the baseline token, forward only: a token's score for answer
    token j is the mean, over the windows covering it, of the drop in j's log-probability."""
    space = ctx.text
    assert space is not None
    rows, columns, row_text = answer_rows(x, answers, include_generated)
    clean = yield from clean_rows(rows, columns)  # the scores without ablation, and the logits reported
    scored = space.real(x)
    if include_generated:  # answer tokens but the last can be ablated: they are read by later ones
        for i, (start, length) in enumerate(answers):
            scored[i, start : start + length - 1] = True
    texts, masks = token_windows(scored, params.window, params.stride)
    total = torch.zeros(rows.shape[:2], dtype=x.dtype, device=x.device)
    coverage = torch.zeros_like(total)
    by_text = [torch.nonzero(row_text == i).squeeze(1) for i in range(len(x))]
    positions = torch.arange(x.shape[1], device=x.device)

    def make_rows(start: int, stop: int) -> tuple[Tensor, Tensor]:
        chosen = texts[start:stop]
        return space.replaced(x[chosen], masks[start:stop], params.baseline), chosen.new_zeros(len(chosen))

    def consume(start: int, stop: int, out: PassOutput) -> None:
        for k in range(stop - start):
            mine = by_text[int(texts[start + k])]
            # Only tokens before an answer token can move its log-probability (the model is causal).
            window = masks[start + k][None] & (positions[None] < columns[mine][:, None])
            drop = clean.scores[mine] - out.logits[k, columns[mine]]
            total[mine] += drop[:, None] * window
            coverage[mine] += window.to(coverage.dtype)

    if len(texts):
        yield Rows(len(texts), make_rows, consume)  # forward only
    return Explanation(total / coverage.clamp_min(1), clean.logits, clean.targets)


def occlusion_rows(x_roles: Tensor, window: int, stride: int) -> int:
    """Windows of a text's scored tokens (the cost of occlusion, before its clean rows)."""
    texts, _ = token_windows(x_roles, window, stride)
    return len(texts)


def evaluated_answers(
    plan: Plan, x: Tensor, answers: list[tuple[int, int]], space: TextSpace, reduce: Reduce, spec: EvaluateSpec
) -> Plan:
    """The method's plan, then deletion and insertion of each text's prompt tokens ranked by the whole answer's
    scores (faithfulness.py's definitions), the answer's summed log-probability the score: `faithfulness`
    values per text (N, ...), not per answer token."""
    result = yield from plan
    assert isinstance(result, Explanation)
    rows_of = torch.tensor([i for i, (_, length) in enumerate(answers) for _ in range(length)], device=x.device)
    raw = result.attributions.to(x.device)
    whole = raw.new_zeros((len(x), *raw.shape[1:])).index_add_(0, rows_of, raw)
    where = text_positions(x, Explanation(whole, result.logits, result.targets), space, reduce)
    answer_columns = torch.zeros((len(x), result.logits.shape[1]), dtype=torch.bool, device=x.device)
    for i, (begin, count) in enumerate(answers):
        answer_columns[i, begin : begin + count] = True

    def score(out: PassOutput, texts: Tensor) -> Tensor:
        return (out.logits * answer_columns[texts]).sum(dim=1)

    per_step = torch.div(where.movable + spec.steps - 1, spec.steps, rounding_mode="floor")
    ranked = {"map": ranking(where.scores), "random": where.random(spec.seed)}
    targets = torch.zeros(len(x), dtype=torch.long, device=x.device)
    out: dict[str, dict[str, Tensor]] = {}
    for metric in dict.fromkeys(spec.metrics):
        start, end = (x, where.removed) if metric == "deletion" else (where.inserted_from, x)
        curves = {}
        for name, places in ranked.items():
            curves[name] = yield from curve(start, end, places, per_step, spec.steps, targets, where.spread, score)
        out[metric] = {"auc": auc(curves["map"]), "random_auc": auc(curves["random"]), "curve": curves["map"]}
    result.faithfulness = {m: {k: v.cpu() for k, v in values.items()} for m, values in out.items()}
    return result
