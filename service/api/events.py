"""Server-sent events for long requests: `progress` while the engine works, then `result` (or `error`).

The `result` event's data is the JSON body the same request gets without the stream. Errors the request
hits before its first progress report (a bad image, an unknown layer, a full queue) are answered as plain
JSON errors with their status, as without the stream; later ones arrive as an `error` event.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from ..engine.runner import Progress
from ..errors import ServiceError

log = logging.getLogger("service.api")

PROGRESS_INTERVAL_S = 0.1


def wants_events(accept: str) -> bool:
    return "text/event-stream" in accept


def event(name: str, data: object) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def error_body(exc: BaseException) -> tuple[int, dict]:
    if isinstance(exc, ServiceError):
        return exc.status, exc.body()
    log.error("unhandled error in a streamed request", exc_info=exc)
    return 500, {"error": {"code": "internal", "message": "internal error", "field": None}}


async def progress_stream(start: Callable[[Progress], Awaitable[BaseModel]]) -> Response:
    latest: dict[str, int] = {}
    changed = asyncio.Event()

    def report(done: int, total: int) -> None:
        latest.update(done=done, total=total)
        changed.set()

    task = asyncio.ensure_future(start(report))
    waiter = asyncio.ensure_future(changed.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        waiter.cancel()
    failure = task.exception() if task.done() else None
    if failure is not None:
        status, body = error_body(failure)
        return JSONResponse(body, status_code=status, headers=getattr(failure, "headers", None))
    return StreamingResponse(
        events(task, latest, changed),
        media_type="text/event-stream",
        # no-transform and X-Accel-Buffering: proxies (nginx) must pass each event on as it comes.
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
    )


async def events(task: asyncio.Future, latest: dict[str, int], changed: asyncio.Event) -> AsyncIterator[bytes]:
    try:
        while not task.done():
            if latest:
                changed.clear()
                yield event("progress", dict(latest))
                # At most one progress event per interval, but the result goes out as soon as it is ready.
                await asyncio.wait({task}, timeout=PROGRESS_INTERVAL_S)
            waiter = asyncio.ensure_future(changed.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        failure = task.exception()
        if failure is None:
            yield event("result", jsonable_encoder(task.result()))
        else:
            yield event("error", error_body(failure)[1])
    finally:
        task.cancel()  # the client left mid-stream: the engine drops the rest of the work
