"""The event loop's side of the engine: admission by rows, one device worker per device, cancellation.

Requests become jobs of plans (one per method) that the device's scheduler interleaves row by row with
every other request on that device, across models. A request that is cancelled (its client left, or its
deadline passed) is dropped by the device thread before its next chunk.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .errors import Overloaded
from .explainers import Cost, ExplainContext, Explainer, Explanation, Params, PixelSpace
from .explainers.base import Objective
from .explainers.faithfulness import EvaluateSpec, evaluated
from .explainers.plan import Plan, clean_rows, targets_or_top
from .explainers.postprocess import Reduce
from .explainers.text_space import TextSpace
from .metrics import Metrics
from .models import LoadedModel
from .models.text import TextClassifier
from .scheduler.device import DeviceWorker, Ticket
from .scheduler.executor import device_context
from .scheduler.inline import run_plans
from .scheduler.jobs import Job, PlanState
from .scheduler.policy import Chunk
from .settings import Settings

Method = tuple[Explainer, Params]
Evaluation = tuple[EvaluateSpec, list[Reduce]]  # the metrics; per method, the reduction that ranks its map
Progress = Callable[[int, int], None]


DEFAULT_CHUNK = {"cuda": 32, "cpu": 8}


def chunk_rows(loaded: LoadedModel, settings: Settings) -> int:
    """Rows per pass: the configured maximum (or the device's default), lowered to fit the memory budget."""
    configured = settings.chunk_size or DEFAULT_CHUNK.get(loaded.device.type, 32)
    by_budget = settings.memory_budget_bytes // max(1, loaded.row_bytes)
    return int(max(1, min(configured, by_budget)))


def explain_rows(loaded: LoadedModel, methods: list[Method], images: int, shape: tuple[int, ...] | None = None) -> int:
    """Rows (model passes) a request needs: what admission and progress count. Before decoding a text's
    length is not known: its bound (max_length) counts, and progress counts the tokens it has (`shape`)."""
    return images * sum(method_cost(loaded, e, p, shape).forward for e, p in methods)


def method_cost(
    loaded: LoadedModel, explainer: Explainer, params: Params, shape: tuple[int, ...] | None = None
) -> Cost:
    """Passes per input of the method on this model (Score-CAM's depend on its layer's channels)."""
    return explainer.cost_on(params, shape or loaded.input_shape, dict(loaded.layers), loaded.default_layer)


def predict_plan(x: Tensor) -> Plan:
    out = yield from clean_rows(x, targets_or_top(None, len(x), x.device))
    return out.logits.float().cpu()


def pass_module(loaded: LoadedModel, methods: list[Method]) -> nn.Module:
    """The prepared module the request's passes run on: eager where a layer is hooked, the unfolded model
    where that layer is a convolution that absorbed a BatchNorm (its own output changed)."""
    layers = {getattr(p, "layer", None) or loaded.default_layer or "" for e, p in methods if e.capabilities.uses_layer}
    return loaded.module_for(layers)


def explain_plans(
    loaded: LoadedModel,
    module: nn.Module,
    methods: list[Method],
    x: Tensor,
    targets: Tensor,
    evaluate: Evaluation | None = None,
) -> list[Plan]:
    """The methods' plans; with `evaluate` (the metrics and the map's reduction) each goes on to its
    faithfulness curves."""
    spec = loaded.spec
    text = text_space(loaded) if loaded.kind == "text" else None
    pixels = PixelSpace(spec.mean, spec.std)
    ctx = ExplainContext(pixel_space=pixels, layer=loaded.default_layer, text=text)
    x, targets = x.to(loaded.device), targets.to(loaded.device)
    plans = [e.plan(module, x, targets, p, ctx) for e, p in methods]
    if evaluate is not None:
        space = text if text is not None else pixels
        plans = [evaluated(plan, x, space, how, evaluate[0]) for plan, how in zip(plans, evaluate[1], strict=True)]
    return [to_cpu(plan) for plan in plans]


def evaluation_rows(evaluate: Evaluation | None, methods: list[Method], images: int) -> int:
    return 0 if evaluate is None else images * len(methods) * evaluate[0].rows_per_image()


def text_space(loaded: LoadedModel) -> TextSpace:
    """The pad and mask tokens' values at the attributed layer, and the special ids, of a text model."""
    tokenizer = loaded.tokenizer
    ids = [tokenizer.pad_token_id, tokenizer.mask_token_id]
    known = torch.tensor([[i if i is not None else tokenizer.pad_token_id for i in ids]], device=loaded.device)
    module = loaded.module
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


def run_explain(
    loaded: LoadedModel,
    explainer: Explainer,
    params: Params,
    x: Tensor,
    targets: Tensor,
    objective: Objective,
    settings: Settings,
    evaluate: Evaluation | None = None,
) -> Explanation:
    """One explanation on the calling thread, as the server computes it (benchmarks, CUDA tests)."""
    module = pass_module(loaded, [(explainer, params)])
    with device_context(loaded.device, settings.autocast):
        plans = explain_plans(loaded, module, [(explainer, params)], x, targets, evaluate)
        (result,) = run_plans(module, plans, objective, chunk_rows(loaded, settings), settings.channels_last)
    assert isinstance(result, Explanation)
    return result


class EngineRunner:
    def __init__(self, settings: Settings, metrics: Metrics | None = None):
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._workers: dict[str, DeviceWorker] = {}
        self._queued_rows: dict[str, int] = defaultdict(int)  # admitted and not finished, per device
        self._queued_images: dict[str, int] = defaultdict(int)  # per model, for the autoscaler's gauge

    def worker(self, device: torch.device) -> DeviceWorker:
        key = str(device)
        if key not in self._workers:
            worker = DeviceWorker(
                device,
                autocast=self.settings.autocast,
                channels_last=self.settings.channels_last,
                age_limit=self.settings.scheduler_age_limit,
            )
            worker.on_chunk = lambda chunk, seconds: self._observe_chunk(key, chunk, seconds)
            self.metrics.busy.labels(key).set_function(worker.busy_fraction)
            self._workers[key] = worker
        return self._workers[key]

    def check_queue(self, loaded: LoadedModel, rows: int) -> None:
        """Refuses work the device's queue cannot take; called before decoding, so a refusal is cheap."""
        device = str(loaded.device)
        queued = self._queued_rows[device]
        if queued + rows > self.settings.max_queue_rows:
            raise Overloaded(
                f"device {device} has {queued} rows (model passes) queued; this request needs {rows}, "
                f"the limit is {self.settings.max_queue_rows}",
                headers={"Retry-After": str(self.retry_after(device, queued + rows))},
            )

    def retry_after(self, device: str, rows: int) -> int:
        """Seconds to drain `rows` at the device's measured rate (1 s when nothing is measured yet)."""
        worker = self._workers.get(device)
        rate = worker.rows_per_second() if worker is not None else 0.0
        return max(1, min(600, math.ceil(rows / rate))) if rate > 0 else 1

    async def explain(
        self,
        loaded: LoadedModel,
        methods: list[Method],
        x: Tensor,
        targets: Tensor,
        objective: Objective,
        progress: Progress | None = None,
        evaluate: Evaluation | None = None,
        module: nn.Module | None = None,
    ) -> list[Explanation]:
        """One explanation per method, of the same rows; methods that can share passes do. `module`: another
        instance of the model to run on (the sanity checks' randomized copy), else the served one."""
        total = explain_rows(loaded, methods, len(x), (x.shape[1],) if loaded.kind == "text" else None)
        total += evaluation_rows(evaluate, methods, len(x))
        module = module if module is not None else pass_module(loaded, methods)

        def build() -> Job:
            plans = [PlanState(p) for p in explain_plans(loaded, module, methods, x, targets, evaluate)]
            return Job(module, plans, objective, chunk_rows(loaded, self.settings), total)

        return await self._submit(loaded, build, total, len(x), progress)  # type: ignore[return-value]

    async def predict(self, loaded: LoadedModel, x: Tensor) -> Tensor:
        def build() -> Job:
            plan = PlanState(predict_plan(x.to(loaded.device)))
            return Job(loaded.module_for(set()), [plan], "logit", chunk_rows(loaded, self.settings), len(x))

        (logits,) = await self._submit(loaded, build, len(x), len(x), None)
        return logits  # type: ignore[return-value]

    async def _submit(self, loaded: LoadedModel, build, rows: int, images: int, progress) -> list[object]:
        self.check_queue(loaded, rows)
        device, model = str(loaded.device), loaded.spec.name
        loop = asyncio.get_running_loop()
        ticket = Ticket(build, rows, loop, loop.create_future(), progress)
        worker = self.worker(loaded.device)
        self._count(device, model, rows, images)
        try:
            worker.submit(ticket)
            results = await ticket.future
            self.metrics.engine_seconds.labels(model).observe(time.perf_counter() - ticket.submitted)
            return results
        finally:
            self._count(device, model, -rows, -images)
            if not ticket.future.done() or ticket.future.cancelled():
                # The client left or the deadline passed: the device thread drops the rest before its next chunk.
                ticket.abandoned = True
                worker.wake()
                self.metrics.cancellations.labels(model).inc()

    def _count(self, device: str, model: str, rows: int, images: int) -> None:
        # Every change updates the gauges: the autoscaler reads them, and a stale value scales on ghosts.
        self._queued_rows[device] += rows
        self._queued_images[model] += images
        self.metrics.queue_rows.labels(device).set(self._queued_rows[device])
        self.metrics.queue_depth.labels(model).set(self._queued_images[model])
        self.metrics.in_flight.inc(1 if rows > 0 else -1)

    def _observe_chunk(self, device: str, chunk: Chunk, seconds: float) -> None:
        kind = "backward" if chunk.parts and chunk.parts[0][1].rows.needs_backward else "forward"
        self.metrics.rows.labels(device, kind).inc(chunk.size)
        self.metrics.chunk_rows.labels(device).observe(chunk.size)
        self.metrics.busy_seconds.labels(device).inc(seconds)

    def close(self) -> None:
        for worker in self._workers.values():
            worker.close()
