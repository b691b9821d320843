"""Generation with a KV cache, as rows the scheduler can batch with other requests' generation rows.

A generation keeps its sequences' past keys and values in a `KVStore` that its plan holds (so an abandoned
request's cache goes with its plan). A cached row carries only what is new for one sequence, per position
(role, token id, store key, sequence), `(T, 4)`: the whole prompt at the first step, then the token just
chosen. A pass over rows of several stores stacks their pasts right-padded to the longest, masks the
padding, places each row's new tokens at its own positions (position ids), and appends the new keys and values
to each sequence's past. The attention over the past is the same sum as recomputing the whole sequence, so
the log-probabilities equal the uncached forward's up to float rounding (tests/models/test_kv_cache.py); the
row of a step costs one token's forward instead of the sequence's.

The cache is the transformers model's own (`DynamicCache`, per layer keys and values (N, heads, S, head
dim)). A model whose forward does not take `cache`, `position_ids` and a mask over past and new tokens
this way can turn it off: `[models.generation] kv_cache = false` (every step recomputes the sequence). A
generation whose cache would grow past SALIENCY_MAX_KV_CACHE_BYTES (known after its first pass: the bytes of
a position times every sequence's final length) drops it and recomputes, so the cache never holds more.
"""

from __future__ import annotations

import itertools
import weakref
from typing import Any

import torch
from torch import Tensor

ROLE, ID, STORE, SEQUENCE = range(4)  # the features of a cached row's positions (role 0: padding)
_KEYS = itertools.count(1)
_stores: weakref.WeakValueDictionary[int, KVStore] = weakref.WeakValueDictionary()

Past = list[tuple[Tensor, Tensor]]  # per layer (keys, values), each (heads, S, head dim)


class KVStore:
    """One generation's past keys and values per sequence, between its passes."""

    def __init__(self) -> None:
        self.key = next(_KEYS) % 2**24  # exact as a float feature (ids in rows are floats, models/text.py)
        self.past: dict[int, Past] = {}
        _stores[self.key] = self

    def rows(self, sequences: list[int], new: list[list[int]], device: torch.device) -> Tensor:
        """(n, T, 4) cached rows: each sequence's new tokens, padded on the right with role 0."""
        out = torch.zeros((len(sequences), max(map(len, new)), 4), device=device)
        for row, (sequence, tokens) in enumerate(zip(sequences, new, strict=True)):
            out[row, : len(tokens), ROLE] = 1.0
            out[row, : len(tokens), ID] = torch.tensor(tokens, dtype=torch.float32, device=device)
            out[row, :, STORE] = self.key
            out[row, :, SEQUENCE] = sequence
        return out

    def drop(self, sequence: int) -> None:
        self.past.pop(sequence, None)

    def bytes_per_position(self) -> int:
        """What one token's keys and values take, over every layer (0 before the first pass)."""
        for past in self.past.values():
            return sum(k[:, :1].nbytes + v[:, :1].nbytes for k, v in past)
        return 0


def cached_logits(model: Any, rows: Tensor) -> tuple[Tensor, Tensor]:
    """(logits (N, T, V) at the new positions, their attention mask (N, T)); the stores get the new past."""
    role, ids = rows[..., ROLE], rows[..., ID].round().long()
    new = role > 0
    owners = [(_stores[int(r[0, STORE])], int(r[0, SEQUENCE])) for r in rows]
    pasts = [store.past.get(sequence) for store, sequence in owners]
    lengths = torch.tensor([0 if p is None else p[0][0].shape[1] for p in pasts], device=rows.device)
    longest = int(lengths.max())
    n, width = ids.shape
    # Padded positions get position 0: they are masked, and a long past's padding must not run off the table.
    steps = torch.arange(width, device=rows.device)
    positions = torch.where(new, lengths[:, None] + steps, torch.zeros_like(ids))
    past_mask = steps.new_zeros((n, longest))
    cache = None
    if longest:
        from transformers import DynamicCache

        cache = DynamicCache(ddp_cache_data=stacked(pasts, longest))
        past_mask = (torch.arange(longest, device=rows.device) < lengths[:, None]).long()
    mask = torch.cat([past_mask, new.long()], dim=1)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True)
    present = out.past_key_values
    counts = new.sum(dim=1).tolist()
    for row, ((store, sequence), past) in enumerate(zip(owners, pasts, strict=True)):
        fresh = slice(longest, longest + counts[row])
        store.past[sequence] = [
            (
                torch.cat([*([] if past is None else [past[i][0]]), layer.keys[row, :, fresh]], dim=1),
                torch.cat([*([] if past is None else [past[i][1]]), layer.values[row, :, fresh]], dim=1),
            )
            for i, layer in enumerate(present.layers)
        ]
    return out.logits, new.long()


def stacked(pasts: list[Past | None], longest: int) -> list[tuple[Tensor, Tensor]]:
    """Per layer (keys, values) of every row, (N, heads, longest, head dim), zeros where a row's past ends."""
    first = next(p for p in pasts if p is not None)
    out = []
    for layer, (keys, values) in enumerate(first):
        k = keys.new_zeros((len(pasts), keys.shape[0], longest, keys.shape[2]))
        v = values.new_zeros((len(pasts), values.shape[0], longest, values.shape[2]))
        for row, past in enumerate(pasts):
            if past is not None:
                k[row, :, : past[layer][0].shape[1]] = past[layer][0]
                v[row, :, : past[layer][1].shape[1]] = past[layer][1]
        out.append((k, v))
    return out
