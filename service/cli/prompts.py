"""`saliency-service explain --prompt TEXT... --model LM`: a causal language model's answer to each prompt (its
own greedy one, or --target) explained, here or through a server, one request per prompt; per answer token
the prompt tokens with the highest scores, as JSON (stdout, or the -o file)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from saliency_client import AnswersExplained
from saliency_client import ServiceError as ClientError

from ..errors import ServiceError
from .backends import open_batches
from .errors import CommandError
from .explain import ProgressBar, method_spec, one_line
from .language import TOP_TOKENS, answers_request, ranked


def explain_prompts(args: argparse.Namespace) -> None:
    if args.images:
        raise CommandError("give images or --prompt texts, not both")
    if args.colormap is not None:
        raise CommandError("--colormap is for images' overlays: a causal language model's explanation is JSON")
    top = TOP_TOKENS if args.top is None else args.top
    if top < 1:
        raise CommandError(f"--top {top}: at least 1")
    request = answers_request(args, method_spec(args.method or "gradient", args.param or []))
    prompts: list[str] = args.prompt
    batch = len(prompts) > 1
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    summaries: list[dict[str, Any]] = []
    with open_batches(args, request) as backend, ProgressBar(show and batch, "prompts", "prompt") as done:
        kind = backend.model()["kind"]
        if kind != "causal_lm":
            raise CommandError(f"--prompt is for causal language models; {args.model} is a {kind} model")
        for i, prompt in enumerate(prompts):
            with ProgressBar(show and not batch, "explaining", "pass") as passes:
                try:
                    answer = backend.explain_answers([prompt], "texts", passes.report)
                except (ClientError, ServiceError) as exc:
                    raise CommandError(f"{f'prompt {i + 1}: ' if batch else ''}{one_line(exc)}") from None
                passes.finish()
            summaries.append(summary(answer, top))
            if batch:
                done.report(len(summaries), len(prompts))
    text = json.dumps(summaries if batch else summaries[0], indent=2)
    if args.output is None:
        print(text)
        return
    try:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {args.output}: {exc.strerror or exc}") from None


def summary(answer: AnswersExplained, top: int) -> dict[str, Any]:
    """One prompt's answer and, per answer token and for the whole answer, the `top` prompt tokens by their
    score (the service's, as its JSON has them)."""
    (result,) = answer.results
    explanation = result.explanation
    prompt = result.prompt_tokens
    return {
        "prompt": result.prompt,
        "model": answer.model,
        "method": explanation.method,
        "answer": {"text": result.answer, "generated": result.generated, "log_prob": result.log_prob},
        "prompt_tokens": [t.text for t in prompt],
        "answer_tokens": [
            {
                "text": token.text,
                "special": token.special,
                "log_prob": token.log_prob,
                "top": [r.json() for r in ranked(row, prompt, top)],
            }
            for token, row in zip(result.answer_tokens, explanation.scores, strict=True)
        ],
        "top": [r.json() for r in ranked(explanation.answer_scores, prompt, top)],
        "diagnostics": explanation.diagnostics,
    }
