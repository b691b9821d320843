"""`saliency-service serve`, `saliency-service explain IMAGE` (one explanation, here or through a server),
`saliency-service create-key` (an API key, and the line that stores its hash), `saliency-service audit PATH` (an
HTML report over a folder of inputs) and `demo-images` / `demo-scenes` / `demo-reviews` / `demo-prompts`
(folders to audit)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from saliency_client import ServiceError as ClientError

from .. import __version__, logs
from ..keys import KeysError
from ..settings import Settings
from .audit.command import add_parsers as add_audit_parsers
from .audit.command import audit
from .errors import CommandError
from .explain import add_parser as add_explain_parser
from .explain import explain
from .keys import create_key
from .serve import serve


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
    add_explain_parser(sub)
    k = sub.add_parser("create-key", help="make an API key; prints it once, and the line for the keys file")
    k.add_argument("--name", help="the name logs and metrics show for it (default: key-<hash prefix>)")
    k.set_defaults(func=create_key)
    add_audit_parsers(sub)
    args = parser.parse_args(argv)
    if args.func in (explain, audit):
        logs.configure("text")
    try:
        args.func(args)
    except (CommandError, KeysError) as exc:
        sys.exit(f"error: {exc}")
    except ClientError as exc:
        sys.exit(f"error: {exc.code}: {exc.message}")
    except Exception as exc:
        from ..errors import ServiceError

        if isinstance(exc, ServiceError):
            sys.exit(f"error: {exc.message}")
        if isinstance(exc, ValidationError) and exc.title == Settings.__name__:
            sys.exit(f"error: {one_line(exc)}")
        raise
