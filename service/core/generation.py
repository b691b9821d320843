"""Generation by a causal LM as the engine's rows: one forward row per prompt and new token.

Each step is a group of rows (the prompts still going, each with its tokens so far) that the scheduler
batches with other requests' rows; the plan reads the next token's log-probabilities from the pass
(models/causal_lm.py) and picks: the most likely token (greedy, the default), or a draw from the
distribution at `temperature`, cut to the smallest set whose probability reaches `top_p` (nucleus
sampling), from a generator seeded by the request, so the same request gives the same text on any
machine (the draw is made on the CPU in float64). A prompt stops at the end-of-sequence token (kept, as
transformers' generate keeps it) or after max_new_tokens. The first step's row is the prompt; each later
step's row is the token just chosen, over the keys and values of the tokens before it that the plan keeps
(models/kv_cache.py), still one row the scheduler batches (with other generations' rows) and counts; with
`kv_cache = false` every step's row is the whole sequence.

Each token's reported log-probability is the model's own, log p(token | before), whatever the temperature.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from pydantic import Field
from torch import Tensor

from ..codecs.options import Strict
from ..engine.plan import Plan, pass_over
from ..models.causal_lm import CausalLM
from ..models.kv_cache import KVStore
from ..models.spec import GenerationDefaults


class GenerateOptions(Strict):
    """A request's generation; what it leaves out comes from the model's TOML (`generation`)."""

    max_new_tokens: int | None = Field(None, ge=1, le=4096, description="New tokens at most (default: the model's).")
    do_sample: bool | None = Field(None, description="Sample (true) or take the most likely token (false, greedy).")
    temperature: float | None = Field(
        None,
        gt=0.0,
        le=100.0,
        allow_inf_nan=False,
        description="Sampling temperature (> 0; greedy is do_sample=false).",
    )
    top_p: float | None = Field(
        None, gt=0.0, le=1.0, allow_inf_nan=False, description="Nucleus sampling: the smallest set of this probability."
    )
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed of the sampling.")


@dataclass(frozen=True)
class Generation:
    max_new_tokens: int
    do_sample: bool
    temperature: float
    top_p: float
    seed: int

    @classmethod
    def of(cls, given: GenerateOptions | None, defaults: GenerationDefaults) -> Generation:
        given = given or GenerateOptions()

        def pick(name: str):
            value = getattr(given, name)
            return getattr(defaults, name) if value is None else value

        return cls(pick("max_new_tokens"), pick("do_sample"), pick("temperature"), pick("top_p"), given.seed)


@dataclass
class Continuation:
    ids: list[int] = field(default_factory=list)
    log_probs: list[float] = field(default_factory=list)
    finish: str = "length"  # "eos" when the end-of-sequence token was generated


def pick(log_probs: Tensor, how: Generation, generator: torch.Generator) -> Tensor:
    """(n, V) log-probabilities -> (n,) the next tokens."""
    if not how.do_sample:
        return log_probs.argmax(dim=1)
    probs = (log_probs.double().cpu() / how.temperature).softmax(dim=1)
    if how.top_p < 1.0:
        ordered, order = probs.sort(dim=1, descending=True)
        before = ordered.cumsum(dim=1) - ordered  # the probability of the tokens ranked above each
        ordered = torch.where(before < how.top_p, ordered, torch.zeros_like(ordered))  # keeps the first always
        probs = torch.zeros_like(probs).scatter_(1, order, ordered)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1).to(log_probs.device)


def generation_plan(
    module: CausalLM,
    prompts: list[list[int]],
    how: Generation,
    eos: int | None,
    pad: int,
    kv_cache_bytes: int = 2**62,
) -> Plan:
    """Each prompt's continuation (list[Continuation]); rows are built on the device thread (here). With a
    `kv_cache_bytes` budget a step's row is the token just chosen, over the past its plan keeps
    (models/kv_cache.py); a cache that would outgrow it is dropped after the first pass. 0: no cache."""
    device = next(module.parameters()).device
    generator = torch.Generator().manual_seed(how.seed)
    out = [Continuation() for _ in prompts]
    store = KVStore() if kv_cache_bytes > 0 else None
    for step in range(how.max_new_tokens):
        going = [i for i, c in enumerate(out) if c.finish != "eos"]
        if not going:
            break
        if store is not None:
            new = [prompts[i] if step == 0 else out[i].ids[-1:] for i in going]
            x = store.rows(going, new, device)
        else:
            x = full_rows(module, [prompts[i] + out[i].ids for i in going], pad, device)
        targets = torch.zeros(len(going), dtype=torch.long, device=device)
        passed = yield from pass_over(x, targets, cached=store is not None)
        log_probs = module.next_token(passed.logits)
        chosen = pick(log_probs, how, generator)
        for row, i in enumerate(going):
            token = int(chosen[row])
            out[i].ids.append(token)
            out[i].log_probs.append(float(log_probs[row, token]))
            if eos is not None and token == eos:
                out[i].finish = "eos"
                if store is not None:
                    store.drop(i)
        final = sum(len(p) + how.max_new_tokens for p in prompts)
        if store is not None and step == 0 and store.bytes_per_position() * final > kv_cache_bytes:
            store = None  # recompute from here on: exact, and memory stays a pass's
    return out


def full_rows(module: CausalLM, sequences: list[list[int]], pad: int, device: torch.device) -> Tensor:
    """The uncached step: every sequence whole, (n, T, D + 2), padded on the right."""
    longest = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), longest), pad, dtype=torch.long, device=device)
    role = torch.zeros_like(ids)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence, device=device)
        role[row, : len(sequence)] = 1
    return module.rows(torch.stack([role.float(), ids.float()], dim=-1))
