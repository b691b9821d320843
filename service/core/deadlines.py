"""Deadlines: the server's maximum, lowered per request; past it the client gets 504 and the work stops.

Cancelling the request's task reaches the engine runner, which marks its job abandoned: the device thread
drops the remaining rows before its next chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from ..errors import DeadlineExceeded
from ..metrics import Metrics

T = TypeVar("T")


def seconds_for(timeout_ms: int | None, maximum_s: float) -> float:
    return maximum_s if timeout_ms is None else min(maximum_s, timeout_ms / 1000)


async def within(seconds: float, work: Awaitable[T], metrics: Metrics | None = None, model: str = "") -> T:
    try:
        async with asyncio.timeout(seconds):
            return await work
    except TimeoutError:
        if metrics is not None:
            metrics.deadlines.labels(model).inc()
        raise DeadlineExceeded(
            f"the request did not finish within its deadline of {seconds:g} s; its remaining work was dropped"
        ) from None
