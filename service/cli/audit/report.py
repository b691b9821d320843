"""The audit as one self-contained HTML page: inline CSS, pictures as data: URIs, no scripts, and a
Content-Security-Policy that lets it load nothing else. Every text from outside (labels, file names, texts,
the method) is escaped."""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape

from . import pictures
from .aggregate import Audit, Example, Group

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1180px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .5em 0; } td, th { padding: .25em .7em; border-bottom: 1px solid #e5e5e5; }
th { text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.row { display: flex; gap: 1.2em; align-items: flex-start; margin: .8em 0; flex-wrap: wrap; }
.sides { display: grid; grid-template-columns: auto 1fr 1fr; gap: 1.2em; }
figure { margin: 0; width: 128px; font-size: 12px; overflow-wrap: anywhere; }
figure img { width: 128px; height: auto; image-rendering: pixelated; display: block; }
.side { border-left: 3px solid #ddd; padding-left: .8em; min-width: 0; } .side .row { gap: .6em; }
.side figure, .side figure img { width: 88px; } .side.wrong { border-color: #d66; } .side.right { border-color: #6a6; }
figure.mean img { outline: 2px solid #333; } .meta { color: #555; } code { font-size: 13px; }
.texts { flex: 1 1 100%; } .texts p { margin: .3em 0 0; max-width: 60em; }
.token { border-radius: 2px; padding: 0 1px; }
"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@dataclass(frozen=True)
class Context:
    """What the page says about the run, beside the audit's numbers."""

    model: str
    path: str
    method: dict | None
    where: str  # "here" or the server's URL
    colormap: str
    input_size: tuple[int, int] | None  # (height, width) of image models


def page(audit: Audit, ctx: Context) -> str:
    parts = [header(audit, ctx)]
    if audit.region is not None:
        parts.append(region_section(audit, ctx))
    parts.append(predicted_section(audit, ctx))
    if audit.labelled:
        parts.append(truth_section(audit, ctx))
    if audit.skipped:
        rows = "".join(f"<li><code>{escape(name)}</code>: {escape(why)}</li>" for name, why in audit.skipped)
        parts.append(f'<h2 id="skipped">Skipped inputs</h2><ul>{rows}</ul>')
    title = f"Saliency audit: {ctx.model} on {ctx.path}"
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def header(audit: Audit, ctx: Context) -> str:
    method = json.dumps(ctx.method, sort_keys=True) if ctx.method else "(none explained)"
    accuracy = (
        f"; {percent(audit.accuracy)} of the {audit.labelled} with a class sub-folder predicted right"
        if audit.accuracy is not None
        else "; no class sub-folders named after the model's labels, so no true labels"
    )
    skipped = f", {len(audit.skipped)} skipped" if audit.skipped else ""
    return (
        f"<h1>Saliency audit of <code>{escape(ctx.model)}</code></h1>"
        f'<p class="meta">{audit.explained} inputs under <code>{escape(ctx.path)}</code> explained{skipped}{accuracy}.'
        f"<br>Method <code>{escape(method)}</code>, explained {escape(ctx.where)}; each map min-max normalized "
        f"to [0, 1], the class explained is the predicted one.</p>"
    )


def region_section(audit: Audit, ctx: Context) -> str:
    assert audit.region is not None and ctx.input_size is not None
    height, width = ctx.input_size
    share = audit.region.share(width, height)
    head = (
        f'<h2 id="region">Saliency inside the region {escape(str(audit.region))}</h2>'
        f"<p>The fraction of each map's mass inside the box x0,y0,x1,y1 = {escape(str(audit.region))} (input pixels, "
        f"half-open), averaged per class; a map spread evenly would put {percent(share, 2)} there. "
        f"&ldquo;Peak inside&rdquo;: the images whose map peaks in the box."
        + (f" {audit.empty_maps} all-zero maps have no fraction." if audit.empty_maps else "")
        + "</p>"
    )
    tables = [region_table("predicted class", audit.predicted)]
    if audit.labelled:
        tables.append(region_table("true class", audit.truth))
    figures = "".join(example_figure(e, ctx, audit) for e in audit.highest_fractions())
    highest = f'<h3>The images with the highest fractions</h3><div class="row">{figures}</div>'
    return head + '<div class="row">' + "".join(tables) + "</div>" + highest


def region_table(what: str, groups: dict[str, Group]) -> str:
    rows = "".join(
        f"<tr><td>{escape(label)}</td><td class=n>{g.count}</td><td class=n>{percent(g.mean_fraction, 2)}</td>"
        f"<td class=n>{percent(g.peaks_inside / len(g.fractions) if g.fractions else None)}</td></tr>"
        for label, g in groups.items()
        if g.count
    )
    return f"<table><tr><th>{what}</th><th>inputs</th><th>mass inside</th><th>peak inside</th></tr>{rows}</table>"


def predicted_section(audit: Audit, ctx: Context) -> str:
    rows = []
    for label, group in audit.predicted.items():
        if group.count:
            examples = "".join(example_figure(e, ctx, audit) for e in group.examples)
            rows.append(f'<h3>{escape(label)}</h3><div class="row">{summary(group, ctx, audit)}{examples}</div>')
    return '<h2 id="predicted">By predicted class</h2>' + "".join(rows)


def truth_section(audit: Audit, ctx: Context) -> str:
    rows = []
    for label, group in audit.truth.items():
        if not group.count:
            continue
        sides = [
            f'<div class="side"><b>all: {group.count}</b><div class="row">{summary(group, ctx, audit)}</div></div>'
        ]
        for kind, part in (("right", audit.right[label]), ("wrong", audit.wrong[label])):
            inner = summary(part, ctx, audit) + "".join(example_figure(e, ctx, audit) for e in part.examples)
            sides.append(f'<div class="side {kind}"><b>{kind}: {part.count}</b><div class="row">{inner}</div></div>')
        accuracy = percent(audit.right[label].count / group.count)
        title = f"<h3>{escape(label)} ({group.count} inputs, {accuracy} right)</h3>"
        rows.append(f'{title}<div class="sides">{"".join(sides)}</div>')
    return '<h2 id="truth">By true class: right and wrong predictions side by side</h2>' + "".join(rows)


def summary(group: Group, ctx: Context, audit: Audit) -> str:
    """A class's mean map (image models) or its top tokens (text models)."""
    if not group.count:
        return ""
    if group.mean_map is not None:
        mean = group.mean_map
        y, x = divmod(int(mean.argmax()), mean.shape[1])
        src = pictures.mean_map(mean, ctx.colormap, audit.region)
        caption = f"mean of {group.count}, peak at x={x}, y={y}"
        if group.mean_fraction is not None:
            caption += f"; {percent(group.mean_fraction, 2)} inside the region"
        return f'<figure class="mean"><img src="{src}" alt="mean map"><figcaption>{caption}</figcaption></figure>'
    rows = "".join(
        f"<tr><td><code>{escape(token)}</code></td><td class=n>{score:+.3f}</td><td class=n>{n}</td></tr>"
        for token, score, n in group.top_tokens(8)
    )
    return f"<table><tr><th>token</th><th>mean score</th><th>seen</th></tr>{rows}</table>"


def example_figure(example: Example, ctx: Context, audit: Audit) -> str:
    truth = (
        f", true {escape(example.truth)}" if example.truth is not None and example.truth != example.predicted else ""
    )
    caption = (
        f"<code>{escape(example.name)}</code><br>{escape(example.predicted)} {percent(example.probability)}{truth}"
    )
    if example.fraction is not None:
        caption += f"; {percent(example.fraction, 1)} inside"
    if example.tokens is not None:
        return (
            f'<div class="texts"><p>{pictures.text(example.source, example.tokens)}</p><small>{caption}</small></div>'
        )
    src = pictures.overlay(example.source, example.saliency, ctx.colormap, audit.region)
    return f'<figure><img src="{src}" alt="{escape(example.name)}"><figcaption>{caption}</figcaption></figure>'


def percent(value: float | None, digits: int = 0) -> str:
    return "&ndash;" if value is None else f"{100 * value:.{digits}f} %"
