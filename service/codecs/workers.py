"""The threads that decode images and encode maps, apart from the event loop and the device's thread.

Decoding, resizing, colormaps, PNG compression and base64 are CPU work that would otherwise stall every
connection (on the event loop) or the device (on its thread). A bounded pool of their own keeps them off
both, lets them overlap with the device running the next chunk, and keeps a burst of large images from
taking every thread of asyncio's default pool, which model loads use.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class CodecWorkers:
    def __init__(self, threads: int):
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="codec")

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """fn(*args) on a codec thread, with the caller's context (request id in its log lines)."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
