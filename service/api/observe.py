"""Per-request metrics, the 500 answer, and clients that leave: one pure ASGI middleware.

It sits inside the CORS and request-id middleware, so that a 500 carries their headers too (Starlette's own
500 comes from ServerErrorMiddleware, outside every user middleware). A client that disconnects before its
answer is normal: it is counted with status 499 and logged in one INFO line, not as an error.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..metrics import Metrics
from . import handlers

log = logging.getLogger("service.api")

CLIENT_CLOSED = 499  # nginx's status for a client that closed the connection before the response
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def valid_request_id(value: str) -> bool:
    """Client ids are echoed and logged: anything long or odd is replaced by a fresh one."""
    return REQUEST_ID.fullmatch(value) is not None


class RequestObserver:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except (asyncio.CancelledError, ClientDisconnect):
            task = asyncio.current_task()
            if status is not None or (task is not None and task.cancelling()):
                raise  # the server is cancelling this request (shutdown), or the answer is half sent
            # The work was cancelled because the client went away (service.api.disconnect), or it left
            # while its body was being read: nobody is left to answer.
            log.info("client disconnected before the response: %s %s", scope["method"], scope["path"])
            status = CLIENT_CLOSED
        except Exception as exc:
            if status is not None:
                raise
            response = await handlers.unexpected(Request(scope), exc)
            await response(scope, receive, send_noting_status)
        if status is not None:
            self.record(scope, status, time.perf_counter() - started)

    def record(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        if route is None or route.path == "/metrics":
            return
        state = scope.get("state", {})
        labels = state.get("metric_labels", {})
        services = getattr(scope["app"].state, "services", None)
        # Only configured names become label values: clients must not grow the metrics' cardinality.
        model = labels.get("model", "")
        method = labels.get("method", "")
        if services is not None:
            model = model if model in services.pool.specs else ("" if not model else "unknown")
            method = method if method in services.registry.names() else ("" if not method else "unknown")
        key = (route.path, model, method)
        self.metrics.requests.labels(*key, state.get("key_name", ""), str(status)).inc()
        if status == CLIENT_CLOSED:
            return  # no answer: neither a latency nor an error response
        self.metrics.latency.labels(*key).observe(seconds)
        if status >= 400:
            self.metrics.errors.labels(*key, state.get("error_code", "http_error")).inc()
