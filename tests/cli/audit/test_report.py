"""The HTML report: self-contained, every outside text escaped, and the sections an audit has data for."""

from __future__ import annotations

import numpy as np
from saliency_client import ExplainResult, Explanation, Prediction, Token

from service.cli.audit.aggregate import Audit
from service.cli.audit.inputs import Item
from service.cli.audit.region import Region
from service.cli.audit.report import Context, page

HOSTILE = ["<img src=x onerror=alert(1)>", "a&b \"quoted\" 'single'"]


def result(label: str, index: int, saliency: np.ndarray, tokens: list[Token] | None = None) -> ExplainResult:
    target = Prediction(index, label, 0.75, 1.0)
    explanation = Explanation({"name": "gradient"}, saliency, (0.0, 1.0), None, None, {}, tokens)
    return ExplainResult([target], target, [explanation])


def context(**fields) -> Context:
    defaults = dict(
        model='m<"1">', path="data/<&>", method={"name": "gradient", "note": "</code><script>"}, where="here",
        colormap="jet", input_size=(8, 8),
    )  # fmt: skip
    return Context(**(defaults | fields))


def test_an_image_report_is_self_contained_and_escapes_labels_names_and_the_method(tmp_path, self_contained):
    audit = Audit(HOSTILE, Region(4, 4, 8, 8), examples=2)
    rng = np.random.default_rng(0)
    names = ['x"><script>alert(1)</script>.png', "plain & simple.png", "third.png"]
    for i, name in enumerate(names):
        truth = HOSTILE[i % 2]
        audit.add(
            Item(str(tmp_path / "missing.png"), f"{truth}/{name}", truth),
            truth,
            result(HOSTILE[0], 0, rng.random((8, 8))),
        )
    audit.skip(Item("p", "bad<name>.png", None), 'invalid_image: not an image "really"')
    html = page(audit, context())
    tags = self_contained(html)
    assert "<script" not in html and "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "a&amp;b &quot;quoted&quot; &#x27;single&#x27;" in html
    assert "x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;.png" in html and "bad&lt;name&gt;.png" in html
    assert "m&lt;&quot;1&quot;&gt;" in html and "data/&lt;&amp;&gt;" in html and "&lt;/code&gt;&lt;script&gt;" in html
    assert {a.get("id") for t, a in tags if t == "h2"} == {"region", "predicted", "truth", "skipped"}
    # 3 region tops; the predicted class's mean and 2 examples; per true class its mean, then right and wrong
    # with their means and examples (the first true class: 2 right; the second: 1 wrong)
    assert sum(t == "img" for t, _ in tags) == 3 + (1 + 2) + (1 + 1 + 2) + (1 + 1 + 1)


def test_without_true_labels_or_region_those_sections_are_left_out(tmp_path, self_contained):
    audit = Audit(["circle"], None)
    audit.add(Item(str(tmp_path / "a.png"), "a.png", None), None, result("circle", 0, np.ones((8, 8))))
    html = page(audit, context())
    tags = self_contained(html)
    assert {a.get("id") for t, a in tags if t == "h2"} == {"predicted"}
    assert "no class sub-folders named after the model's labels, so no true labels" in html


def test_a_text_report_shows_top_tokens_and_highlighted_texts():
    audit = Audit(["negative", "positive"], None)
    text = 'great <kettle> "posted" by mike'
    tokens = [Token("great", 0, 5, False, 0.4), Token("<", 6, 7, False, 0.1), Token("mike", 27, 31, False, 0.9)]
    for i in range(3):
        audit.add(
            Item(text, f"positive/r.txt:{i + 1}", "positive"), "positive", result("positive", 1, np.zeros(3), tokens)
        )
    html = page(audit, context(input_size=None))
    assert "<code>mike</code></td><td class=n>+0.900</td><td class=n>3</td>" in html
    assert html.index("<code>mike</code>") < html.index("<code>great</code>") < html.index("<code>&lt;</code>")
    assert "&lt;</span>kettle&gt; &quot;posted&quot; by" in html and "<kettle>" not in html and "<img" not in html
