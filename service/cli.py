"""`saliency-service serve`, `saliency-service explain IMAGE` (one explanation, no server) and
`saliency-service create-key` (an API key, and the line that stores its hash)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ipaddress
import json
import logging
import os
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from . import logs
from .keys import ApiKeys, KeysError, check_name, hash_key, new_key
from .settings import Settings

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


def explain_remote(args: argparse.Namespace, body: dict, progress) -> dict:
    """The explain request to a running server, following its progress events; the JSON body of the answer."""
    import httpx

    key = args.api_key or os.environ.get("SALIENCY_API_KEY")
    headers = {"Accept": "text/event-stream", **({"Authorization": f"Bearer {key}"} if key else {})}
    url = f"{args.url.rstrip('/')}/v1/models/{args.model}/explain"
    with httpx.stream("POST", url, json=body, headers=headers, timeout=httpx.Timeout(30, read=None)) as response:
        if response.status_code != 200 or not response.headers.get("content-type", "").startswith("text/event"):
            response.read()
            return failure(response.json() if response.content.startswith(b"{") else {}, response.status_code)
        name, data = None, []
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data.append(line.partition(":")[2].strip())
            elif not line and name is not None:  # a blank line ends an event
                payload = json.loads("\n".join(data))
                if name == "progress":
                    progress(payload["done"], payload["total"])
                elif name == "result":
                    return payload
                elif name == "error":
                    return failure(payload, None)
                name, data = None, []
    sys.exit("error: the server closed the stream without a result")


def failure(body: dict, status: int | None) -> dict:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        sys.exit(f"error: {error.get('code')}: {error.get('message')}")
    sys.exit(f"error: HTTP {status}")


def explain_local(args: argparse.Namespace) -> None:
    from pydantic import ValidationError
    from tqdm import tqdm

    from . import inference
    from .main import build_services
    from .schemas import ExplainResponse, ExplainSpec, OutputOptions

    method = json.loads(args.method) if args.method.startswith("{") else args.method
    try:
        # The target as the HTTP form reads it: "1" is class 1, "circle" a label, "predicted" the top class.
        fields = ExplainSpec.model_validate_strings({"target": args.target}).model_dump(include={"target"})
        spec = ExplainSpec(method=method, output=OutputOptions(overlay=True, colormap=args.colormap), **fields)
    except ValidationError as exc:
        sys.exit(f"error: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
    overrides = {"config": args.config} if args.config else {}
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    bar = tqdm(unit="pass", desc="explaining", file=sys.stderr, disable=not show)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        if args.url:
            body = {"images": [base64.b64encode(Path(args.image).read_bytes()).decode()], **spec.model_dump()}
            response = ExplainResponse.model_validate(explain_remote(args, body, progress))
            if bar.total:  # progress events are at most every 100 ms: the last may come before the end
                progress(bar.total, bar.total)
        else:
            services = build_services(Settings(**overrides))
            try:
                work = inference.explain(services, args.model, [Path(args.image).read_bytes()], spec, progress)
                answer = asyncio.run(work)
            finally:
                services.runner.close()
            assert isinstance(answer, ExplainResponse)  # one method: the single-method response
            response = answer
    finally:
        bar.close()
    result = response.results[0]
    Path(args.output).write_bytes(base64.b64decode(result.overlay_png or ""))
    summary = {
        "model": response.model,
        "method": response.method,
        "target": result.target.model_dump(),
        "predictions": [p.model_dump() for p in result.predictions],
        "overlay": args.output,
        "diagnostics": result.diagnostics,
    }
    print(json.dumps(summary, indent=2))


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
    e.add_argument("--url", help="a running server (e.g. http://127.0.0.1:8000) instead of explaining locally")
    e.add_argument("--api-key", help="with --url: the API key (default: $SALIENCY_API_KEY)")
    e.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on stderr (default: when stderr is a terminal)",
    )
    e.set_defaults(func=explain_local)
    k = sub.add_parser("create-key", help="make an API key; prints it once, and the line for the keys file")
    k.add_argument("--name", help="the name logs and metrics show for it (default: key-<hash prefix>)")
    k.set_defaults(func=create_key)
    args = parser.parse_args(argv)
    if args.func is explain_local:
        logs.configure("text")
    try:
        args.func(args)
    except KeysError as exc:
        sys.exit(f"error: {exc}")
    except Exception as exc:
        from .errors import ServiceError

        if isinstance(exc, ServiceError):
            sys.exit(f"error: {exc.message}")
        if isinstance(exc, ValidationError) and exc.title == Settings.__name__:
            sys.exit(f"error: {one_line(exc)}")
        raise


if __name__ == "__main__":
    main()
