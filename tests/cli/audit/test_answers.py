"""`saliency-service audit` of a causal language model, here and through a live server: per answer token position
and for the whole answer, the prompt tokens that most often get the top score are what the v1 JSON of the same
request says; prompts too long are skipped, the options of maps end in one line, and the report is escaped."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from causal_lms import MAX_LENGTH

from service import cli

PROMPTS = [
    "the cat sat on the",
    "question : colour of the sky ? answer :",
    "the dog ran under the tree",
    "a big bird flew",
    "the <b>cat</b> sat",  # an unknown word, and markup the report must escape
]


def audit(*args: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.main(["audit", *args, "--model", "tiny-lm"])
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def prompts(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("prompts")
    (folder / "sub").mkdir()
    (folder / "a.txt").write_text("\n".join(PROMPTS[:3]) + "\n\n")
    (folder / "sub" / "b.txt").write_text("\n".join(PROMPTS[3:]) + "\n")
    return folder


def leaders(rows: list[tuple[list[float], list[dict]]]) -> dict:
    """What the report must say of these rows (each with its prompt's tokens), computed here from the scores."""
    top, seen, sums, counted = Counter(), Counter(), defaultdict(float), 0
    for row, tokens in rows:
        kept = [j for j, t in enumerate(tokens) if not t["special"]]
        scale = max(abs(row[j]) for j in kept)
        counted += 1
        first = max(kept, key=lambda j: (row[j], -j))
        top[tokens[first]["text"].strip()] += 1
        best: dict[str, float] = {}
        for j in kept:
            text = tokens[j]["text"].strip()
            best[text] = max(best.get(text, -np.inf), row[j] / scale)
        for text, score in best.items():
            seen[text] += 1
            sums[text] += score
    mean = {t: sums[t] / seen[t] for t in top}
    order = sorted(top, key=lambda t: (-top[t], -mean[t], t))[:5]
    listed = [{"token": t, "top": top[t], "seen": seen[t], "mean_score": round(mean[t], 4)} for t in order]
    return {"rows": counted, "empty_rows": 0, "top_tokens": listed}


def expected(body: dict, names: list[str]) -> dict:
    """The audit's summary of the v1 JSON of the same request (one method)."""
    results = body["results"]
    pairs = [(r["explanations"][0], r["prompt"]["tokens"]) for r in results]
    longest = max(len(e["scores"]) for e, _ in pairs)
    positions = [
        {"position": k + 1, **leaders([(e["scores"][k], t) for e, t in pairs if k < len(e["scores"])])}
        for k in range(longest)
    ]
    listed = []
    for name, result, (e, t) in zip(names, results, pairs, strict=True):
        row = e["answer_scores"]
        first = int(np.argmax(row))
        score = round(row[first] / max(abs(v) for v in row), 4)
        top = {"token": t[first]["text"], "index": first, "score": score}
        listed.append(
            {"name": name, "prompt": result["prompt"]["text"], "answer": result["answer"]["text"], "top": top}
        )
    return {
        "method": body["methods"][0],
        "explained": len(results),
        "skipped": 0,
        "whole_answer": leaders([(e["answer_scores"], t) for e, t in pairs]),
        "positions": positions,
        "prompts": listed,
    }


NAMES = ["a.txt:1", "a.txt:2", "a.txt:3", "sub/b.txt:1", "sub/b.txt:2"]


def test_the_models_own_answers_here_are_the_v1_json(prompts, lm_config, lm_v1, tmp_path, capsys):
    report = tmp_path / "lm.html"
    summary = audit(str(prompts), "--config", str(lm_config), "--max-new-tokens", "3", "--batch-size", "16",
                    "--progress", "-o", str(report))  # fmt: skip
    assert "5/5" in capsys.readouterr().err  # the bar, in prompts
    generate = {"max_new_tokens": 3, "do_sample": False}
    body = lm_v1({"texts": PROMPTS, "method": {"name": "gradient"}, "target": "predicted", "generate": generate})
    assert summary == {"report": str(report), "model": "tiny-lm", "target": None, "max_new_tokens": 3,
                       **expected(body, NAMES)}  # fmt: skip
    lengths = [len(e["explanations"][0]["scores"]) for e in body["results"]]
    assert max(lengths) <= 3 and len(summary["positions"]) == max(lengths)
    html = report.read_text(encoding="utf-8")
    assert "default-src 'none'" in html and "<script" not in html and "<b>" not in html
    assert "&lt;b&gt;cat&lt;/b&gt;" in html and "own greedy answer, at most 3 new tokens" in html


def test_a_target_through_a_server_is_the_servers_v1_json(prompts, lm_server, tmp_path):
    report = tmp_path / "remote.html"
    method = '{"name": "input_x_gradient"}'
    summary = audit(str(prompts), "--url", lm_server.url, "--target", "mat under", "--method", method,
                    "--batch-size", "16", "-o", str(report))  # fmt: skip
    body = lm_server.explain({"texts": PROMPTS, "method": {"name": "input_x_gradient"}, "target": "mat under"})
    assert summary == {"report": str(report), "model": "tiny-lm", "target": "mat under", "max_new_tokens": None,
                       **expected(body, NAMES)}  # fmt: skip
    assert [p["answer"] for p in summary["prompts"]] == ["mat under"] * 5 and len(summary["positions"]) == 2
    assert any(t["mean_score"] < 0 for p in summary["positions"] for t in p["top_tokens"])  # signed scores
    assert "by the server at 127.0.0.1:" in report.read_text(encoding="utf-8")


def test_prompts_too_long_are_skipped_with_the_reason(tmp_path, lm_config):
    folder = tmp_path / "long"
    folder.mkdir()
    # 21 tokens: over max_length with 4 new tokens, in a batch whose error names no prompt; 30: over it alone.
    (folder / "p.txt").write_text(f"the cat sat\n{'the ' * 21}\n{'the ' * 30}\na bird flew\n")
    summary = audit(str(folder), "--config", str(lm_config), "--max-new-tokens", "4", "-o", str(tmp_path / "r.html"))
    assert (summary["explained"], summary["skipped"]) == (2, 2)
    assert [p["name"] for p in summary["prompts"]] == ["p.txt:1", "p.txt:4"]
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<code>p.txt:3</code>: 30 tokens, over the model&#x27;s max_length of 24" in html
    assert "<code>p.txt:2</code>: a prompt of 21 tokens and max_new_tokens 4 are over" in html


@pytest.mark.parametrize(
    "args, says",
    [
        (["--region", "1,1,2,2"], "error: --region is for maps; tiny-lm is a causal language model"),
        (["--examples", "2"], "error: --examples is for maps; tiny-lm is a causal language model"),
        (["--colormap", "jet"], "error: --colormap is for maps; tiny-lm is a causal language model"),
        (["--target", "mat", "--max-new-tokens", "2"], "error: --max-new-tokens is for the model's own answer"),
        (["--max-new-tokens", "0"], "error: --max-new-tokens 0: at least 1"),
        (["--max-new-tokens", str(MAX_LENGTH)], "error: --max-new-tokens 24: the model's max_length is 24 tokens"),
        (["--method", "gradcam"], "error: gradcam does not explain causal_lm models"),
    ],
)
def test_mistakes_end_with_one_line(prompts, lm_config, tmp_path, args, says):
    with pytest.raises(SystemExit) as info:
        audit(str(prompts), "--config", str(lm_config), *args, "-o", str(tmp_path / "r.html"))
    message = str(info.value.code)
    assert message.startswith(says) and "\n" not in message, message
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("option", [["--max-new-tokens", "3"], ["--target", "mat"]])
def test_a_classifier_refuses_the_options_of_causal_lms(tmp_path, option):
    with pytest.raises(SystemExit) as info:
        cli.main(["audit", str(tmp_path), "--model", "shapes", *option])
    assert str(info.value.code) == f"error: {option[0]} is for causal language models; shapes is a image model"


def test_a_tally_skips_special_tokens_takes_the_first_of_ties_and_counts_rows_without_a_score():
    from saliency_client import LMToken

    from service.cli.audit.answers import Tally

    tokens = [LMToken("the", 0, 0, 3, False, None), LMToken(" cat", 1, 3, 7, False, None),
              LMToken("<eos>", 2, None, None, True, None), LMToken(" the", 0, 8, 12, False, None)]  # fmt: skip
    tally = Tally()
    # The special token's 5.0 is not ranked; "the" and "cat" tie, the earlier wins; the scale is |-2|.
    assert tally.add(np.array([1.0, 1.0, 5.0, -2.0]), tokens) == ("the", 0, 0.5)
    assert tally.add(np.zeros(4), tokens) is None
    assert (tally.rows, tally.empty) == (1, 1)
    assert tally.leaders() == [{"token": "the", "top": 1, "seen": 1, "mean_score": 0.5}]  # "the" at its higher score
    assert tally.seen["cat"] == 1 and tally.sums["cat"] == 0.5  # " cat" without its space
