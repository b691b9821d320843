"""`saliency-service serve` and `saliency-service explain IMAGE` (one explanation, no server)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path

from .settings import Settings


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from .main import create_app

    overrides = {"config": args.config} if args.config else {}
    settings = Settings(**overrides)
    app = create_app(settings)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=args.graceful_timeout
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
            logging.getLogger("service").info("SIGTERM: draining for %.1f s, then shutting down", drain)
            loop.call_later(drain, lambda: setattr(server, "should_exit", True))

        # Ours, below, replace uvicorn's (which since 0.29 it installs in `capture_signals`, with signal.signal).
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, begin_drain)
        await server.serve()

    asyncio.run(run())


def explain_local(args: argparse.Namespace) -> None:
    from . import inference
    from .main import build_services
    from .schemas import ExplainSpec

    overrides = {"config": args.config} if args.config else {}
    services = build_services(Settings(**overrides))
    method = json.loads(args.method) if args.method.startswith("{") else args.method
    target = int(args.target) if args.target.isdigit() else args.target
    spec = ExplainSpec(method=method, target=target, output={"overlay": True, "colormap": args.colormap})
    try:
        response = asyncio.run(inference.explain(services, args.model, [Path(args.image).read_bytes()], spec))
    finally:
        services.runner.close()
    result = response.results[0]
    Path(args.output).write_bytes(base64.b64decode(result.overlay_png))
    summary = {
        "model": response.model,
        "method": response.method,
        "target": result.target.model_dump(),
        "predictions": [p.model_dump() for p in result.predictions],
        "overlay": args.output,
        "diagnostics": result.diagnostics,
    }
    print(json.dumps(summary, indent=2))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="saliency-service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the HTTP server (default: the demo models)")
    p.add_argument("--config", help="models TOML (default: $SALIENCY_CONFIG or the bundled demo models)")
    p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p.add_argument("--log-level", default="info")
    p.add_argument("--graceful-timeout", type=float, default=30.0, help="seconds in-flight requests get on exit")
    p.set_defaults(func=serve)
    e = sub.add_parser("explain", help="explain one image locally, without a server; writes the overlay PNG")
    e.add_argument("image")
    e.add_argument("--model", default="shapes")
    e.add_argument("--method", default="gradcam", help='a name, or a JSON object such as {"name": "occlusion"}')
    e.add_argument("--target", default="predicted")
    e.add_argument("--colormap", default="jet")
    e.add_argument("--config")
    e.add_argument("-o", "--output", default="overlay.png")
    e.set_defaults(func=explain_local)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except Exception as exc:
        from .errors import ServiceError

        if isinstance(exc, ServiceError):
            sys.exit(f"error: {exc.message}")
        raise


if __name__ == "__main__":
    main()
