"""Runs model work off the event loop, batching concurrent requests.

Requests for the same model, method, parameters and objective are gathered into one engine call (rows
keep their own targets), up to `max_batch_size` images or `max_batch_delay_ms`, then split back. Each
device has one single-thread executor: a device runs one pass at a time anyway, so more threads would
only contend for it (on CPU, torch's intra-op threads already use every core).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .errors import Overloaded
from .explainers import ExplainContext, Explainer, Explanation, Params, PixelSpace, explain
from .explainers.base import Objective, chunks
from .metrics import Metrics
from .models import LoadedModel
from .settings import Settings

AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def chunk_rows(loaded: LoadedModel, settings: Settings) -> int:
    """Rows per pass: the configured maximum, lowered to fit the memory budget."""
    by_budget = settings.memory_budget_bytes // max(1, loaded.row_bytes)
    return int(max(1, min(settings.chunk_size, by_budget)))


def device_context(loaded: LoadedModel, settings: Settings):
    if settings.autocast != "off" and loaded.device.type == "cuda":
        return torch.autocast("cuda", dtype=AUTOCAST[settings.autocast])
    return nullcontext()


def to_device(x: Tensor, loaded: LoadedModel, settings: Settings) -> Tensor:
    x = x.to(loaded.device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if settings.channels_last else x


def run_explain(
    loaded: LoadedModel,
    explainer: Explainer,
    params: Params,
    x: Tensor,
    targets: Tensor,
    objective: Objective,
    settings: Settings,
) -> Explanation:
    """Moves the input once, explains, and returns float32 CPU tensors."""
    spec = loaded.spec
    ctx = ExplainContext(
        objective=objective,
        chunk_size=chunk_rows(loaded, settings),
        pixel_space=PixelSpace(spec.mean, spec.std),
        layer=loaded.default_layer,
    )
    with device_context(loaded, settings):
        result = explain(
            explainer,
            loaded.module,
            to_device(x, loaded, settings),
            targets.to(loaded.device),
            params,
            ctx,
            spec.num_classes,
        )
    return Explanation(
        result.attributions.float().cpu(),
        result.logits.float().cpu(),
        result.targets.cpu(),
        {k: v.cpu() for k, v in result.diagnostics.items()},
    )


def run_predict(loaded: LoadedModel, x: Tensor, settings: Settings) -> Tensor:
    x = to_device(x, loaded, settings)
    with torch.inference_mode(), device_context(loaded, settings):
        rows = chunk_rows(loaded, settings)
        return torch.cat([loaded.module(x[a:b]) for a, b in chunks(len(x), rows)]).float().cpu()


@dataclass(eq=False)  # identity, not tensor comparison, for `item in lane.items`
class Item:
    x: Tensor
    targets: Tensor
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)


@dataclass
class Lane:
    """Pending requests sharing one batch key."""

    items: list[Item] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    running: bool = False


class EngineRunner:
    def __init__(self, settings: Settings, metrics: Metrics | None = None):
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._executors: dict[str, ThreadPoolExecutor] = {}
        self._lanes: dict[Hashable, Lane] = defaultdict(Lane)
        self._queued: dict[str, int] = defaultdict(int)  # images waiting, per model
        self._busy: dict[str, int] = defaultdict(int)  # batches submitted to a device and not finished

    def executor(self, device: torch.device) -> ThreadPoolExecutor:
        key = str(device)
        if key not in self._executors:
            self._executors[key] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"engine-{key}")
        return self._executors[key]

    async def explain(
        self,
        loaded: LoadedModel,
        explainer: Explainer,
        params: Params,
        x: Tensor,
        targets: Tensor,
        objective: Objective,
    ) -> Explanation:
        def work(bx: Tensor, bt: Tensor) -> Explanation:
            return run_explain(loaded, explainer, params, bx, bt, objective, self.settings)

        key = (loaded.spec.name, explainer.name, params, objective)
        return await self._submit(key, loaded, explainer.name, x, targets, work, split_explanation)

    async def predict(self, loaded: LoadedModel, x: Tensor) -> Tensor:
        def work(bx: Tensor, _bt: Tensor) -> Tensor:
            return run_predict(loaded, bx, self.settings)

        targets = torch.full((len(x),), -1, dtype=torch.long)
        key = (loaded.spec.name, "predict")
        return await self._submit(key, loaded, "predict", x, targets, work, lambda out, a, b: out[a:b])

    async def _submit(self, key, loaded, method, x, targets, work: Callable, split: Callable):
        loop = asyncio.get_running_loop()
        model = loaded.spec.name
        if not self.settings.batching:
            return await self._run(loaded.device, work, x, targets)
        self.check_queue(model, len(x))
        item = Item(x, targets, loop.create_future())
        lane = self._lanes[key]
        lane.items.append(item)
        self._count_queued(model, len(x))
        lane.arrived.set()
        if not lane.running:
            lane.running = True
            asyncio.ensure_future(self._drain(key, lane, loaded, method, work, split))
        try:
            return await item.future
        finally:
            if item in lane.items:  # cancelled (client gone) before its batch ran: drop its work
                lane.items.remove(item)
                self._count_queued(model, -len(x))

    def check_queue(self, model: str, images: int) -> None:
        """Refuses work the model's queue cannot take; called before decoding, so a refusal is cheap."""
        if self.settings.batching and self._queued[model] + images > self.settings.max_queue:
            raise Overloaded(
                f"model {model!r} has {self._queued[model]} images queued; retry shortly", headers={"Retry-After": "1"}
            )

    def _count_queued(self, model: str, delta: int) -> None:
        # Every change updates the gauge: the autoscaler reads it, and a stale value scales on ghosts.
        self._queued[model] += delta
        self.metrics.queue_depth.labels(model).set(self._queued[model])

    async def _drain(self, key, lane: Lane, loaded: LoadedModel, method: str, work: Callable, split: Callable):
        model, limit = loaded.spec.name, self.settings.max_batch_size
        try:
            while lane.items:
                deadline = lane.items[0].queued + self.settings.max_batch_delay_ms / 1000
                # Wait for companions only while the device is busy anyway: a lone request on an idle
                # device runs at once, and under load batches fill while the previous pass runs.
                while (
                    self._busy[str(loaded.device)]
                    and sum(len(i.x) for i in lane.items) < limit
                    and (wait := deadline - time.perf_counter()) > 0
                ):
                    lane.arrived.clear()
                    try:
                        await asyncio.wait_for(lane.arrived.wait(), wait)
                    except TimeoutError:
                        break
                batch, rows = [], 0
                while lane.items and (not batch or rows + len(lane.items[0].x) <= limit):
                    item = lane.items.pop(0)
                    batch.append(item)
                    rows += len(item.x)
                self._count_queued(model, -rows)
                now = time.perf_counter()
                for item in batch:
                    self.metrics.queue_seconds.labels(model).observe(now - item.queued)
                batch = [i for i in batch if not i.future.done()]
                if not batch:
                    continue
                self.metrics.batch_size.labels(model, method).observe(sum(len(i.x) for i in batch))
                x = torch.cat([i.x for i in batch])
                targets = torch.cat([i.targets for i in batch])
                try:
                    out = await self._run(loaded.device, work, x, targets)
                except Exception as exc:  # every request of the batch gets the error (client errors included)
                    for item in batch:
                        if not item.future.done():
                            item.future.set_exception(exc)
                    continue
                start = 0
                for item in batch:
                    if not item.future.done():
                        item.future.set_result(split(out, start, start + len(item.x)))
                    start += len(item.x)
        finally:
            lane.running = False
            if not lane.items:
                self._lanes.pop(key, None)

    async def _run(self, device: torch.device, work: Callable, x: Tensor, targets: Tensor):
        loop = asyncio.get_running_loop()
        self._busy[str(device)] += 1
        try:
            return await loop.run_in_executor(self.executor(device), work, x, targets)
        finally:
            self._busy[str(device)] -= 1

    def close(self) -> None:
        for executor in self._executors.values():
            executor.shutdown(wait=True, cancel_futures=True)


def split_explanation(out: Explanation, start: int, stop: int) -> Explanation:
    return Explanation(
        out.attributions[start:stop],
        out.logits[start:stop],
        out.targets[start:stop],
        {k: v[start:stop] for k, v in out.diagnostics.items()},
    )
