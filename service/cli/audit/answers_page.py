"""A causal language model's audit as one self-contained HTML page (the classifiers' page's CSS and policy):
the whole answer's and each answer token position's top prompt tokens, and every prompt with its answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape

from .answers import AnswerAudit, Tally
from .report import CSP, STYLE, percent


@dataclass(frozen=True)
class AnswersContext:
    model: str
    path: str
    method: dict | None
    where: str  # "here" or the server's URL
    answer: str  # what was explained: the model's own answer, or the --target continuation


def page(audit: AnswerAudit, ctx: AnswersContext) -> str:
    method = json.dumps(ctx.method, sort_keys=True) if ctx.method else "(none explained)"
    skipped = f", {len(audit.skipped)} skipped" if audit.skipped else ""
    positions = "".join(
        f"<div><h3>{ordinal(i + 1)} answer token</h3>{table(tally)}</div>" for i, tally in enumerate(audit.positions)
    )
    rows = "".join(
        f"<tr><td><code>{escape(p.name)}</code></td><td>{p.highlighted}</td><td>{escape(p.answer)}</td>"
        + (f"<td><code>{escape(p.top[0])}</code> {p.top[2]:+.3f}</td>" if p.top else "<td>&ndash;</td>")
        + "</tr>"
        for p in audit.prompts
    )
    parts = [
        f"<h1>Saliency audit of <code>{escape(ctx.model)}</code></h1>"
        f'<p class="meta">{len(audit.prompts)} prompts under <code>{escape(ctx.path)}</code> explained{skipped}: '
        f"{escape(ctx.answer)}.<br>Method <code>{escape(method)}</code>, explained {escape(ctx.where)}. Each row of "
        "scores (one per answer token, and the whole answer's) is scaled by its largest absolute score over the "
        "prompt's tokens, to [&minus;1, 1]; a row's top token has its highest score. &ldquo;Top&rdquo;: how often "
        "a token had a row's top score; &ldquo;in&rdquo;: how often a row's prompt held it; &ldquo;mean "
        "score&rdquo;: its mean scaled score over those rows.</p>",
        f'<h2 id="answer">The whole answer</h2>{table(audit.whole)}',
        f'<h2 id="positions">By answer token</h2><div class="row">{positions}</div>',
        '<h2 id="prompts">Per prompt</h2><p>Each prompt on its whole-answer scores (red for the answer, blue '
        "against), the answer, and the prompt token with the top score.</p>"
        f"<table><tr><th>input</th><th>prompt</th><th>answer</th><th>top prompt token</th></tr>{rows}</table>",
    ]
    if audit.skipped:
        listed = "".join(f"<li><code>{escape(name)}</code>: {escape(why)}</li>" for name, why in audit.skipped)
        parts.append(f'<h2 id="skipped">Skipped inputs</h2><ul>{listed}</ul>')
    title = f"Saliency audit: {ctx.model} on {ctx.path}"
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def table(tally: Tally) -> str:
    rows = "".join(
        f"<tr><td><code>{escape(t['token'])}</code></td><td class=n>{t['top']}</td>"
        f"<td class=n>{percent(t['top'] / tally.rows)}</td><td class=n>{t['seen']}</td>"
        f"<td class=n>{t['mean_score']:+.3f}</td></tr>"
        for t in tally.leaders()
    )
    empty = f"; {tally.empty} with no score" if tally.empty else ""
    return (
        f'<p class="meta">{tally.rows} rows{empty}</p><table><tr><th>token</th><th>top</th><th>of the rows</th>'
        f"<th>in</th><th>mean score</th></tr>{rows}</table>"
    )


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
