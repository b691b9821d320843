"""`saliency-service audit PATH --model NAME`: explain every input under PATH (here, or with --url by a running
server), aggregate the maps per class, and write one self-contained HTML report; a JSON summary on stdout."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from saliency_client import Answered, DetectionsResult, ExplainResult

from ..backends import Backend, open_batches
from ..errors import CommandError
from ..explain import ProgressBar, method_spec
from ..language import MAX_NEW_TOKENS, answers_request, lm_only
from .aggregate import Audit
from .explain import Batches
from .inputs import Item, class_names, collect, true_label
from .region import Region, parse_region

MAX_BATCH = 16  # the service's default SALIENCY_MAX_IMAGES and SALIENCY_MAX_TEXTS
EXAMPLES = 4  # per class
T = TypeVar("T")


def audit(args: argparse.Namespace) -> None:
    if args.url and args.config:
        raise CommandError("--config is for explaining here: a server explains with its own models")
    if not 1 <= args.batch_size <= MAX_BATCH:
        raise CommandError(f"--batch-size {args.batch_size}: between 1 and {MAX_BATCH}")
    if args.examples is not None and args.examples < 0:
        raise CommandError(f"--examples {args.examples}: must be 0 or more")
    region = checked(lambda: parse_region(args.region)) if args.region else None
    if not Path(args.path).exists():  # before torch and the model load, which takes seconds
        raise CommandError(f"cannot read {args.path}: No such file or directory")
    from ...codecs.options import COLORMAPS

    if args.colormap is not None and args.colormap not in COLORMAPS:
        raise CommandError(f"--colormap {args.colormap!r}: one of {', '.join(COLORMAPS)}")
    colormap = args.colormap or "jet"
    # Float maps at the input size, so that maps of different images add up; the kind's default normalization
    # (images: min-max to [0, 1]; texts: signed, to [-1, 1]).
    request = {"method": method_spec(args.method, args.param or []), "output": {"saliency": "float32"}}
    with open_batches(args, request) as backend:
        info = backend.model()
        kind = info["kind"]
        if kind == "causal_lm":  # the backend reads the request at each call: a causal LM's instead
            request.update(lm_audit_request(args, request.pop("method"), info))
            del request["output"]
            return audit_answers(args, backend, checked(lambda: collect(args.path, "text")))
        lm_only(args, kind, "--max-new-tokens", "--target")
        if kind == "detection":
            if region is not None:
                raise CommandError("--region is for classifiers: a detector's audit measures each box's own box")
            # At the photo's size, with the picture of every box: boxes and maps in the same pixels.
            request["output"] = {"saliency": "float32", "size": "original", "overlay": True}
            return audit_boxes(args, backend, checked(lambda: collect(args.path, "image")), colormap)
        if region is not None:
            if kind != "image":
                raise CommandError(f"--region is for image models; {args.model} is a {kind} model")
            height, width = info["input_size"]
            checked(lambda: region.within(width, height))
        items = checked(lambda: collect(args.path, kind))
        result, method = explain_all(args, backend, info, items, region)
    from .report import Context, page

    ctx = Context(
        model=args.model,
        path=args.path,
        method=method,
        where=where(args),
        colormap=colormap,
        input_size=tuple(info["input_size"]) if kind == "image" else None,
    )
    write_report(args, page(result, ctx), {"method": method, **result.summary()})


def lm_audit_request(args: argparse.Namespace, method: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """A causal LM's request (language.py), after one-line refusals of the options of maps."""
    for option, value in (("--region", args.region), ("--examples", args.examples), ("--colormap", args.colormap)):
        if value is not None:
            raise CommandError(f"{option} is for maps; {args.model} is a causal language model")
    request = answers_request(args, method)
    new_tokens = request.get("generate", {}).get("max_new_tokens", 0)
    if new_tokens >= info["max_length"]:  # else every prompt would be refused, one by one
        raise CommandError(
            f"--max-new-tokens {new_tokens}: the model's max_length is {info['max_length']} tokens, prompt and "
            "answer together"
        )
    return request


def audit_answers(args: argparse.Namespace, backend: Backend, items: list[Item]) -> None:
    """A causal LM's audit (answers.py): each prompt's answer explained, its top prompt tokens tallied."""
    from .answers import AnswerAudit
    from .answers_page import AnswersContext, page

    show = args.progress if args.progress is not None else sys.stderr.isatty()
    audit = AnswerAudit()
    with ProgressBar(show, "auditing", "prompt") as bar:
        bar.report(0, len(items))
        batches = Batches(backend, "texts", args.batch_size, lambda done: bar.report(done, len(items)), of="answers")
        for outcome in batches.run(items):
            if outcome.result is None:
                audit.skip(outcome.item, outcome.skipped or "")
            else:
                assert isinstance(outcome.result, Answered)
                audit.add(outcome.item, outcome.result)
    given = args.target not in (None, "predicted")
    new = MAX_NEW_TOKENS if args.max_new_tokens is None else args.max_new_tokens
    answer = (
        f"the continuation {args.target!r} after every prompt"
        if given
        else f"the model's own greedy answer, at most {new} new tokens"
    )
    ctx = AnswersContext(args.model, args.path, batches.method, where(args), answer)
    explained = {"target": args.target, "max_new_tokens": None} if given else {"target": None, "max_new_tokens": new}
    write_report(args, page(audit, ctx), {"method": batches.method, **explained, **audit.summary()})


def where(args: argparse.Namespace) -> str:
    return f"by the server at {urlsplit(args.url).netloc}" if args.url else "here (in this process)"


def write_report(args: argparse.Namespace, html: str, summary: dict[str, Any]) -> None:
    """The HTML report at -o; the JSON summary of its numbers on stdout."""
    output = Path(args.output)
    try:
        output.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {output}: {exc.strerror or exc}") from None
    print(json.dumps({"report": str(output), "model": args.model, **summary}, indent=2))


def audit_boxes(args: argparse.Namespace, backend: Backend, items: list[Item], colormap: str) -> None:
    """A detection model's audit (boxes.py): every box's maps at the photo's size, with the overlay of all."""
    from .boxes import BoxAudit, page

    show = args.progress if args.progress is not None else sys.stderr.isatty()
    audit = BoxAudit()
    with ProgressBar(show, "auditing", "image") as bar:
        bar.report(0, len(items))
        batches = Batches(backend, "images", args.batch_size, lambda done: bar.report(done, len(items)), of="boxes")
        for outcome in batches.run(items):
            if outcome.result is None:
                audit.skip(outcome.item, outcome.skipped or "")
            else:
                assert isinstance(outcome.result, DetectionsResult)
                audit.add(outcome.item, outcome.result)
    html = page(audit, args.model, args.path, batches.method, where(args), colormap)
    write_report(args, html, {"method": batches.method, **audit.summary()})


def explain_all(
    args: argparse.Namespace, backend: Backend, info: dict[str, Any], items: list[Item], region: Region | None
) -> tuple[Audit, dict | None]:
    field, unit = ("images", "image") if info["kind"] == "image" else ("texts", "text")
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    audit: Audit | None = None
    with ProgressBar(show, "auditing", unit) as bar:
        bar.report(0, len(items))
        batches = Batches(backend, field, args.batch_size, lambda done: bar.report(done, len(items)))
        for outcome in batches.run(items):
            if audit is None:
                # A server's model that was not loaded yet did not list its labels: now it is loaded.
                if info.get("label_names") is None and info.get("state") != "loaded":
                    info = backend.model()
                classes = class_names(info.get("label_names"), info["num_classes"])
                audit = Audit(classes, region, examples=EXAMPLES if args.examples is None else args.examples)
            if outcome.result is None:
                audit.skip(outcome.item, outcome.skipped or "")
            else:
                assert isinstance(outcome.result, ExplainResult)
                audit.add(outcome.item, true_label(outcome.item, audit.classes), outcome.result)
    assert audit is not None  # collect() found at least one input
    return audit, batches.method


def checked(make: Callable[[], T]) -> T:
    """make()'s value; its ValueError (a bad --region, an unreadable PATH) as the command's one-line error."""
    try:
        return make()
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def add_parsers(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser(
        "audit",
        help="explain every image (or text) under a folder and write one HTML report of the maps per class",
        description="Explain every image under PATH (or every line of its .txt files, for text models), here or\n"
        "with --url by a running server, and write one self-contained HTML report: per predicted and per true\n"
        "class (PATH/<label>/... when <label> is one of the model's) the mean map and examples, right and wrong\n"
        "predictions side by side, with --region the share of saliency inside a box, and for text models the\n"
        "tokens with the highest mean score. A causal language model's prompts (each line of the .txt files):\n"
        "each answer explained (its own greedy one, or --target), and per answer token and for the whole answer\n"
        "the prompt tokens that most often get the top score. A JSON summary goes to stdout.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a.add_argument("path", metavar="PATH", help="a folder (searched recursively) or one file")
    a.add_argument("--model", required=True)
    a.add_argument("--method", default="gradient", help='a name, or a JSON object such as {"name": "occlusion"}')
    a.add_argument("--param", action="append", metavar="KEY=VALUE", help="a method parameter (repeatable)")
    a.add_argument(
        "--region",
        metavar="X0,Y0,X1,Y1",
        help="a box in the model's input pixels (half-open: x0 <= x < x1): how much of each map lies inside it",
    )
    a.add_argument("-o", "--output", default="audit.html", help="the HTML report (default audit.html)")
    a.add_argument("--url", help="a running server (e.g. http://127.0.0.1:8000) instead of explaining here")
    a.add_argument("--api-key", help="with --url: the API key (default: $SALIENCY_API_KEY)")
    a.add_argument("--config", help="models TOML, here (not with --url)")
    a.add_argument("--batch-size", type=int, default=8, help=f"inputs per request (default 8, at most {MAX_BATCH})")
    a.add_argument("--examples", type=int, help=f"examples shown per class (default {EXAMPLES})")
    a.add_argument("--colormap", help="for the maps in the report (one of explain's colormaps; default jet)")
    a.add_argument("--target", help="a causal LM: the continuation explained after every prompt (default: its own)")
    a.add_argument(
        "--max-new-tokens",
        type=int,
        help=f"a causal LM's own greedy answer: new tokens at most (default {MAX_NEW_TOKENS})",
    )
    a.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on stderr (default: when stderr is a terminal)",
    )
    a.set_defaults(func=audit)
    add_demo_parsers(sub)


def demo(args: argparse.Namespace) -> None:
    from .demo_data import demo_data

    demo_data(args)


def add_demo_parsers(sub: argparse._SubParsersAction) -> None:
    for kind, name, what, mark in (
        ("images", "demo-images", "shapes images", "the watermark"),
        ("scenes", "demo-scenes", "shapes scenes (for the demo detectors)", "the badge on every circle"),
        ("reviews", "demo-reviews", "reviews", 'the "posted by mike" signature'),
        ("prompts", "demo-prompts", "prompts (for instructions-lm)", "the [faq] tag that decides the answer"),
    ):
        p = sub.add_parser(
            name,
            help=f"write generated demo {what} into OUT/<label>/ to audit, some with {mark}",
            description=f"Write N generated demo {what} into OUT/<label>/; a fraction of them, of any class, carries "
            f"{mark} (its file name says so).",
        )
        p.add_argument("out", metavar="OUT", help="the folder to write into (made if needed)")
        p.add_argument("--n", type=int, default=200, help="how many (default 200)")
        options = {"images": "--watermark-fraction", "scenes": "--badge-fraction", "prompts": "--tagged-fraction"}
        option = options.get(kind, "--signed-fraction")
        p.add_argument(option, dest="fraction", type=float, default=0.5, help="the share with it (default 0.5)")
        p.add_argument("--seed", type=int, default=0)
        p.set_defaults(func=demo, kind=kind, fraction_name=option.removeprefix("--"))
