"""`saliency-service explain IMAGE...`: explanations here, or through a running server with the Python client
(service.client), with a progress bar; an overlay PNG per image (and per box, for a detection model: see
boxes.py) and a JSON summary on stdout. A causal language model's `--prompt TEXT...`: prompts.py."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from saliency_client import ServiceError as ClientError

from ..errors import ServiceError
from .backends import open_batches
from .boxes import box_target, write_boxes
from .errors import CommandError
from .language import MAX_NEW_TOKENS, TOP_TOKENS, lm_only
from .outputs import overlay_paths, write_overlay

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
DIGITS_IN_A_CLASS_INDEX = 18  # longer is a label (and int() of thousands of digits is refused anyway)


def explain(args: argparse.Namespace) -> None:
    """Each image's explanation, here or (with --url) by a running server: overlay PNGs and a JSON summary."""
    if args.url and args.config:
        raise CommandError("--config is for explaining here: a server explains with its own models")
    if args.prompt:
        from .prompts import explain_prompts  # which reads this module's helpers

        return explain_prompts(args)
    if not args.images:
        raise CommandError("give images to explain (or a causal language model's prompts with --prompt TEXT)")
    images = image_paths(args.images)
    batch = len(images) > 1 or any(Path(p).is_dir() for p in args.images)
    outputs = overlay_paths(images, args.output, batch)
    request = explain_request(args)
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    summaries: list[dict[str, Any]] = []
    with open_batches(args, request) as backend, ProgressBar(show and batch, "images", "image") as files:
        kind = backend.model()["kind"]
        if kind == "causal_lm":
            raise CommandError(f"model {args.model!r} is a causal language model: give its prompts with --prompt TEXT")
        lm_only(args, kind, "--max-new-tokens", "--top")
        boxes = kind == "detection"
        if boxes:  # the backend reads the request at each call
            request["target"] = box_target(args.target, args.model)
        taken = set(outputs)  # no box's overlay overwrites an image's
        if batch:
            files.report(0, len(images))
        for image, output in zip(images, outputs, strict=True):
            with ProgressBar(show and not batch, "explaining", "pass") as passes:
                try:
                    if boxes and backend.explain_boxes is not None:
                        found = backend.explain_boxes([image], "images", passes.report)
                        summary = write_boxes(image, output, found, request["target"], taken)
                    else:
                        summary = write_overlay(image, output, backend.explain([image], "images", passes.report))
                except (ClientError, ServiceError) as exc:
                    raise CommandError(f"{image + ': ' if batch else ''}{one_line(exc, boxes)}") from None
                passes.finish()
            summaries.append(summary)
            if batch:
                files.report(len(summaries), len(images))
    print(json.dumps(summaries if batch else summaries[0], indent=2))


class ProgressBar:
    """A tqdm bar on stderr, opened at the first report: after the model has loaded, and logged."""

    def __init__(self, show: bool, desc: str, unit: str) -> None:
        self.show, self.desc, self.unit = show, desc, unit
        self.bar: Any = None

    def report(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=self.unit, desc=self.desc, file=sys.stderr, disable=not self.show)
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def finish(self) -> None:
        if self.bar is not None:
            self.report(self.bar.total, self.bar.total)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.close()


def methods_and_colormaps() -> str:
    """The registry's methods with their parameters, and the colormaps the service draws with."""
    from ..codecs.options import COLORMAPS
    from ..explainers import default_registry

    lines = ["methods (--method NAME) and their parameters (--param KEY=VALUE):"]
    for explainer in default_registry():
        params = ", ".join(explainer.params_model.model_fields) or "-"
        texts = "" if "text" in explainer.capabilities.modalities else "  (images only)"
        lines.append(f"  {explainer.name:<22}{params}{texts}")
    lines.append(f"colormaps (--colormap): {', '.join(COLORMAPS)}")
    return "\n".join(lines)


def one_line(exc: ClientError | ServiceError, boxes: bool = False) -> str:
    """`boxes`: name the box an error is about (target.1.box), the message alone does not."""
    message = exc.message
    if boxes and (exc.field or "").startswith("target.") and not message.startswith(exc.field or ""):
        message = f"--target: {exc.field}: {message}"
    # The server's errors keep their code (what a script can match on); local ones read as they always have.
    return f"{exc.code}: {message}" if isinstance(exc, ClientError) else message


def image_paths(arguments: list[str]) -> list[str]:
    """The files named, and the images in the folders named (sorted; not their subfolders)."""
    paths = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise CommandError(f"{argument}: no images in the folder (looked for {', '.join(IMAGE_SUFFIXES)})")
            paths += found
        elif path.is_file():
            paths.append(argument)
        else:
            raise CommandError(
                f"cannot read {argument}: {'not a file' if path.exists() else 'No such file or directory'}"
            )
    return paths


def explain_request(args: argparse.Namespace) -> dict[str, Any]:
    """The request's method, target and output, as the JSON API (and the client) take them."""
    return {
        "method": method_spec(args.method or "gradcam", args.param or []),
        "target": target(args.target),
        "output": {"overlay": True, "colormap": args.colormap or "jet"},
    }


def method_spec(method: str, params: list[str]) -> dict[str, Any]:
    """--method NAME (or a JSON object) with each --param KEY=VALUE; values are JSON where they parse."""
    if method.lstrip().startswith("{"):
        try:
            spec = json.loads(method)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--method: not valid JSON: {exc}") from None
    else:
        spec = {"name": method}
    for param in params:
        key, equals, value = param.partition("=")
        if not equals or not key.strip():
            raise CommandError(f"--param {param!r}: expected KEY=VALUE, such as steps=32")
        if key.strip() == "name":
            raise CommandError("--param name: give the method's name with --method")
        spec[key.strip()] = json_or_text(value)
    return spec


def json_or_text(value: str) -> Any:
    """32 -> 32, 0.5 -> 0.5, true -> True, [1, 2] -> a list; anything that is not JSON (black) is a string."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def target(value: str) -> int | str:
    """As the HTTP form reads it: "1" is class 1, "circle" a label, "predicted" the top class."""
    digits = value.isascii() and value.isdigit() and len(value) <= DIGITS_IN_A_CLASS_INDEX
    return int(value) if digits else value


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The explain command's arguments (`sub` makes main's Parser, which takes help_epilog)."""
    e = sub.add_parser(
        "explain",
        help="explain images (here, or with --url by a server); writes overlay PNGs; its --help lists the methods",
        description="Explain images, here or (with --url) by a running server: write each overlay PNG and print\n"
        "a JSON summary. A detection model's image: the overlay of every box, each box's beside it (NAME-box0.png,\n"
        "...), and its detections in the summary. A causal language model's --prompt TEXT (repeatable): each\n"
        "prompt's answer (its own greedy one, or --target) and per answer token its top prompt tokens, as JSON.\n"
        "Mistakes and the server's errors end it with one `error: ...` line.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help_epilog=methods_and_colormaps,
    )
    e.add_argument("images", nargs="*", metavar="IMAGE", help="image files, or folders of them")
    e.add_argument("--prompt", action="append", metavar="TEXT", help="a causal LM: a prompt to explain (repeatable)")
    e.add_argument("--model", default="shapes")
    e.add_argument(
        "--method",
        help='a name, or a JSON object such as {"name": "occlusion"} (default gradcam; a causal LM: gradient)',
    )
    e.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="a method parameter, such as --param steps=32 (repeatable; values are read as JSON when they are JSON)",
    )
    e.add_argument(
        "--target",
        default="predicted",
        help='"predicted", a class index or a label; a detection model: its detections (the default) or boxes as '
        'JSON, [{"box": [x0, y0, x1, y1], "label": ...}], explained in every image; a causal LM: its own answer '
        "(the default) or the continuation explained after every prompt",
    )
    e.add_argument(
        "--max-new-tokens",
        type=int,
        help=f"a causal LM's own greedy answer: new tokens at most (default {MAX_NEW_TOKENS})",
    )
    e.add_argument("--top", type=int, help=f"a causal LM: prompt tokens listed per answer token (default {TOP_TOKENS})")
    e.add_argument("--colormap", help="the overlays' colormap (default jet)")
    e.add_argument("--config", help="models TOML, here (not with --url)")
    e.add_argument(
        "-o",
        "--output",
        help="the overlay PNG (default overlay.png); with several images a folder (overlays); a causal LM: the "
        "JSON's file (default stdout)",
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
