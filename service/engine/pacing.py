"""Rows per pass from time: as many as fit a pass-time target, from a moving estimate of each kind of pass's
seconds per row, learnt from the passes the device actually runs.

Why time and not a constant: a pass costs about a fixed overhead plus its rows, so a request alone runs best
in large passes (Captum's IG-50 in one batch took 1.01 s here, in batches of 8 1.22 s), while a cheap request
that arrives meanwhile waits for the pass that is running. A target of T ms gives both: passes as large as
the device does well, and a wait of about T for newcomers. The memory budget still caps the rows
(runner.chunk_rows), and results do not depend on the pass size (plans are exact for any split).

The estimate is per kind of pass (model, objective, forward-only or with backward, guided): a backward pass
costs about twice a forward one. A pass of few rows is mostly overhead, so it moves the estimate in
proportion to its rows: a stream of one-row requests does not shrink the next heavy request's passes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Any

import torch

DEFAULT_TARGET_MS = {"cpu": 250.0, "cuda": 50.0}  # measured: bench/README.md "Pass size by time"
FIRST_ROWS = {"cpu": 8, "cuda": 32}  # a kind of pass not measured yet: the old fixed size, until it is
SMOOTHING = 0.3  # weight of a full pass's measurement in the moving estimate


class Pacer:
    def __init__(self, target_ms: float, first_rows: int, smoothing: float = SMOOTHING) -> None:
        if target_ms <= 0 or first_rows < 1 or not 0 < smoothing <= 1:
            raise ValueError("target_ms > 0, first_rows >= 1 and 0 < smoothing <= 1")
        self.target_s = target_ms / 1000.0
        self.first_rows = first_rows
        self.smoothing = smoothing
        self._per_row: dict[Hashable, float] = {}
        self._lock = threading.Lock()  # observed on the device thread, read by the metrics endpoint

    def rows(self, key: Hashable, cap: int) -> int:
        """Rows for the next pass of this kind: the target over the estimated seconds per row, within [1, cap]."""
        per_row = self._per_row.get(key)
        rows = self.first_rows if per_row is None else int(self.target_s / per_row)
        return max(1, min(cap, rows))

    def observe(self, key: Hashable, rows: int, seconds: float) -> None:
        if rows < 1 or seconds <= 0:
            return
        measured = seconds / rows
        with self._lock:
            known = self._per_row.get(key)
            if known is None:
                self._per_row[key] = measured
                return
            weight = self.smoothing * min(1.0, rows / self.first_rows)
            self._per_row[key] = (1 - weight) * known + weight * measured

    def seconds_per_row(self, key: Hashable) -> float | None:
        return self._per_row.get(key)


class PassTimer:
    """A pass's seconds: wall time on the CPU; on CUDA, events around the pass on the device's stream (the
    launch returns before the kernels finish), waited for at the end."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.seconds = 0.0
        self._started = 0.0
        self._events: tuple[Any, Any] | None = None

    def __enter__(self) -> PassTimer:
        if self.cuda:
            self._events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            self._events[0].record()
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._events is not None:
            start, end = self._events
            end.record()
            end.synchronize()
            self.seconds = start.elapsed_time(end) / 1000.0
        else:
            self.seconds = time.perf_counter() - self._started
