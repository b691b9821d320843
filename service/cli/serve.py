"""`saliency-service serve`: the HTTP server, with a drain period on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal

from .. import logs
from ..keys import ApiKeys
from ..settings import Settings

log = logging.getLogger("service")


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost: assume others can reach it


def serve(args: argparse.Namespace) -> None:
    overrides = {"config": args.config} if args.config else {}
    # Settings and keys before the slow imports (torch): a bad value fails in a second, in one line.
    settings = Settings(**overrides)
    api_keys = ApiKeys.load(settings.api_keys, settings.api_key_hashes)
    logs.configure(settings.log_format, args.log_level)

    import uvicorn

    from ..main import create_app

    if not api_keys and not is_loopback(args.host):
        log.warning(
            "NO API KEYS: listening on %s, so anyone who can reach port %d can use the API; "
            "set SALIENCY_API_KEYS (README: 'Security: API keys')",
            args.host,
            args.port,
        )
    app = create_app(settings, api_keys)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=None,  # logs.configure set up the root logger; uvicorn's loggers propagate to it
        timeout_graceful_shutdown=args.graceful_timeout,
    )
    server = uvicorn.Server(config)
    drain = settings.drain_seconds

    async def run() -> None:
        loop = asyncio.get_running_loop()

        def begin_drain() -> None:
            # Readiness turns 503 first so the load balancer stops sending; then uvicorn stops accepting
            # connections and lets in-flight requests finish.
            if app.state.draining:
                server.should_exit = True
                return
            app.state.draining = True
            log.info("SIGTERM: draining for %.1f s, then shutting down", drain)
            loop.call_later(drain, lambda: setattr(server, "should_exit", True))

        # Ours, below, replace uvicorn's (which since 0.29 it installs in `capture_signals`, with signal.signal).
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, begin_drain)
        await server.serve()

    asyncio.run(run())
