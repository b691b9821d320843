"""Runs model work off the event loop: one single-thread executor per device.

One thread per device because a device runs one pass at a time anyway: more threads would only contend
for it (on CPU, torch's intra-op threads already use every core).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor

from .explainers import ExplainContext, Explainer, Explanation, Params, PixelSpace, explain
from .explainers.base import Objective, chunks
from .models import LoadedModel
from .settings import Settings


def run_explain(
    loaded: LoadedModel,
    explainer: Explainer,
    params: Params,
    x: Tensor,
    targets: Tensor,
    objective: Objective,
    settings: Settings,
) -> Explanation:
    """Moves the input once, explains, and returns CPU tensors."""
    spec = loaded.spec
    ctx = ExplainContext(
        objective=objective,
        chunk_size=settings.chunk_size,
        pixel_space=PixelSpace(spec.mean, spec.std),
        layer=loaded.default_layer,
    )
    x = x.to(loaded.device, non_blocking=True)
    result = explain(explainer, loaded.module, x, targets.to(loaded.device), params, ctx, spec.num_classes)
    return Explanation(
        result.attributions.cpu(),
        result.logits.cpu(),
        result.targets.cpu(),
        {k: v.cpu() for k, v in result.diagnostics.items()},
    )


def run_predict(loaded: LoadedModel, x: Tensor, settings: Settings) -> Tensor:
    x = x.to(loaded.device, non_blocking=True)
    with torch.inference_mode():
        return torch.cat([loaded.module(x[a:b]) for a, b in chunks(len(x), settings.chunk_size)]).cpu()


class EngineRunner:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._executors: dict[str, ThreadPoolExecutor] = {}

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
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor(loaded.device),
            run_explain,
            loaded,
            explainer,
            params,
            x,
            targets,
            objective,
            self.settings,
        )

    async def predict(self, loaded: LoadedModel, x: Tensor) -> Tensor:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor(loaded.device), run_predict, loaded, x, self.settings)

    def close(self) -> None:
        for executor in self._executors.values():
            executor.shutdown(wait=True, cancel_futures=True)
