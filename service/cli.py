"""`saliency-service serve`, `saliency-service explain IMAGE` (one explanation, here or through a server),
`saliency-service create-key` (an API key, and the line that stores its hash), `saliency-service audit PATH` (an
HTML report over a folder of inputs) and `demo-images` / `demo-reviews` (folders to audit)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from . import __version__, logs
from .audit.command import add_parsers as add_audit_parsers
from .audit.command import audit
from .client import ServiceError as ClientError
from .explain_command import explain, methods_and_colormaps
from .keys import ApiKeys, KeysError, check_name, hash_key, new_key
from .settings import Settings

log = logging.getLogger("service")


class Parser(argparse.ArgumentParser):
    """A parser whose help may end with text made only when help is asked for (the method list imports torch,
    which takes seconds)."""

    def __init__(self, *args: Any, help_epilog: Callable[[], str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help_epilog = help_epilog

    def format_help(self) -> str:
        if self.help_epilog is not None:
            self.epilog = self.help_epilog()
        return super().format_help()


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

    from .main import create_app

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


def create_key(args: argparse.Namespace) -> None:
    key = new_key()
    digest = hash_key(key)
    name = check_name(args.name) if args.name else f"key-{digest[:8]}"
    print(f"# API key {name!r}: give it to its client now; it is shown only once and not stored.")
    print(key)
    print("# The line for the keys file (SALIENCY_API_KEYS); it holds only the key's hash:")
    print(f"{digest}  {name}")


def one_line(exc: ValidationError) -> str:
    """A settings error as `SALIENCY_NAME: reason`, without pydantic's multi-line report."""
    parts = []
    for error in exc.errors():
        name = "SALIENCY_" + "_".join(str(p) for p in error["loc"]).upper()
        parts.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = Parser(prog="saliency-service", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the HTTP server (default: the demo models)")
    p.add_argument("--config", help="models TOML (default: $SALIENCY_CONFIG or the bundled demo models)")
    p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p.add_argument("--log-level", default="info")
    p.add_argument("--graceful-timeout", type=float, default=30.0, help="seconds in-flight requests get on exit")
    p.set_defaults(func=serve)
    e = sub.add_parser(
        "explain",
        help="explain images (here, or with --url by a server); writes overlay PNGs; its --help lists the methods",
        description="Explain images, here or (with --url) by a running server: write each overlay PNG and print\n"
        "a JSON summary. Mistakes and the server's errors end it with one `error: ...` line.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help_epilog=methods_and_colormaps,
    )
    e.add_argument("images", nargs="+", metavar="IMAGE", help="image files, or folders of them")
    e.add_argument("--model", default="shapes")
    e.add_argument("--method", default="gradcam", help='a name, or a JSON object such as {"name": "occlusion"}')
    e.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="a method parameter, such as --param steps=32 (repeatable; values are read as JSON when they are JSON)",
    )
    e.add_argument("--target", default="predicted", help='"predicted", a class index or a label')
    e.add_argument("--colormap", default="jet")
    e.add_argument("--config", help="models TOML, here (not with --url)")
    e.add_argument(
        "-o", "--output", help="the overlay PNG (default overlay.png); with several images a folder (overlays)"
    )
    e.add_argument("--url", help="a running server (e.g. http://127.0.0.1:8000) instead of explaining locally")
    e.add_argument("--api-key", help="with --url: the API key (default: $SALIENCY_API_KEY)")
    e.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on stderr, in passes (one image) or images (default: when stderr is a terminal)",
    )
    e.set_defaults(func=explain)
    k = sub.add_parser("create-key", help="make an API key; prints it once, and the line for the keys file")
    k.add_argument("--name", help="the name logs and metrics show for it (default: key-<hash prefix>)")
    k.set_defaults(func=create_key)
    add_audit_parsers(sub)
    args = parser.parse_args(argv)
    if args.func in (explain, audit):
        logs.configure("text")
    try:
        args.func(args)
    except KeysError as exc:
        sys.exit(f"error: {exc}")
    except ClientError as exc:
        sys.exit(f"error: {exc.code}: {exc.message}")
    except Exception as exc:
        from .errors import ServiceError

        if isinstance(exc, ServiceError):
            sys.exit(f"error: {exc.message}")
        if isinstance(exc, ValidationError) and exc.title == Settings.__name__:
            sys.exit(f"error: {one_line(exc)}")
        raise


if __name__ == "__main__":
    main()
