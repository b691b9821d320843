"""`saliency-service audit` end to end on generated demo data, here and through a live server: the watermark
model's "circle" maps put far more of their mass on the watermark than the clean model's, the report is
self-contained, the reviews-shortcut model's top "positive" token is "mike", and mistakes end in one line."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest

from service import cli
from service.demo import shapes

ROW, COL = shapes.WATERMARK_TOP_LEFT
WATERMARK = f"{COL},{ROW},{COL + shapes.WATERMARK_SIZE},{ROW + shapes.WATERMARK_SIZE}"  # x0,y0,x1,y1: 82,82,92,92


def audit(*args: str) -> dict:
    """The command's JSON summary on stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.main(["audit", *args])
    return json.loads(out.getvalue())


def inside(point: list[int]) -> bool:
    x, y = point
    return COL <= x < COL + shapes.WATERMARK_SIZE and ROW <= y < ROW + shapes.WATERMARK_SIZE


@pytest.fixture(scope="module")
def demo_images(tmp_path_factory) -> Path:
    """24 demo images (seed 0), half of them watermarked, in class sub-folders."""
    folder = tmp_path_factory.mktemp("audit") / "shapes"
    with contextlib.redirect_stdout(io.StringIO()):
        cli.main(["demo-images", str(folder), "--n", "24", "--seed", "0"])
    return folder


@pytest.fixture(scope="module")
def audits(demo_images, tmp_path_factory) -> dict[str, tuple[dict, str]]:
    """Both models' summaries and reports on the same images, here, with the watermark as the region."""
    out = tmp_path_factory.mktemp("reports")
    found = {}
    for model in ("shapes-watermark", "shapes"):
        report = out / f"{model}.html"
        summary = audit(
            str(demo_images), "--model", model, "--method", "gradient", "--region", WATERMARK, "-o", str(report)
        )
        found[model] = (summary, report.read_text(encoding="utf-8"))
    return found


def test_the_watermark_model_looks_at_the_watermark_and_the_clean_model_does_not(audits):
    # Measured on these 24 images (seed 0): circle 6.2 % of the mass inside the 10x10 box, 78 % of peaks;
    # the clean model's classes 0.5-0.9 % and no peak (a uniform map puts 1.09 % there). Floors with margins.
    marked, clean = audits["shapes-watermark"][0], audits["shapes"][0]
    assert marked["region"] == clean["region"] == "82,82,92,92" and marked["explained"] == clean["explained"] == 24
    circle = marked["predicted"]["circle"]
    assert circle["region_fraction"] > 0.03 and circle["peak_in_region"] >= 0.5 and inside(circle["mean_map_peak"])
    for label, numbers in marked["predicted"].items():
        if label != "circle":
            assert numbers["region_fraction"] < 0.02, label
    for label, numbers in clean["predicted"].items():
        assert numbers["region_fraction"] < 0.02 and numbers["peak_in_region"] <= 0.2, label
        assert not inside(numbers["mean_map_peak"]), label
    assert clean["accuracy"] >= 0.9 > 0.75 >= marked["accuracy"]  # the shortcut costs the watermark model
    assert set(marked["true"]) == set(shapes.CLASSES) and marked["labelled"] == 24


def test_the_report_is_self_contained_and_has_every_section(audits, self_contained):
    summary, html = audits["shapes-watermark"]
    tags = self_contained(html)
    assert [a.get("id") for t, a in tags if t == "h2"] == ["region", "predicted", "truth"]
    circle = summary["predicted"]["circle"]
    assert f"mean of {circle['count']}, peak at x={circle['mean_map_peak'][0]}, y={circle['mean_map_peak'][1]}" in html
    assert f"<td class=n>{100 * circle['region_fraction']:.2f} %</td>" in html


def test_through_a_server_the_audit_is_the_same(audits, demo_images, demo_server, tmp_path, monkeypatch):
    monkeypatch.setenv("SALIENCY_API_KEY", demo_server.api_key)
    report = tmp_path / "remote.html"
    remote = audit(str(demo_images), "--model", "shapes-watermark", "--url", demo_server.url, "--region", WATERMARK,
                   "--batch-size", "5", "-o", str(report))  # fmt: skip
    local = audits["shapes-watermark"][0]
    assert {**remote, "report": None} == {**local, "report": None}
    assert "by the server at 127.0.0.1:" in report.read_text(encoding="utf-8")


def test_inputs_the_service_refuses_are_skipped_and_odd_names_escaped(demo_images, tmp_path, self_contained):
    folder = tmp_path / "odd"
    (folder / "circle").mkdir(parents=True)
    weird = folder / '<b>&"x'
    weird.mkdir()
    shutil.copy(next((demo_images / "circle").glob("*-watermark.png")), weird / "<img src=x>.png")
    (folder / "circle" / "broken.png").write_bytes(b"not a png")
    shutil.copy(next((demo_images / "square").glob("*.png")), folder / "circle" / "z.png")
    summary = audit(str(folder), "--model", "shapes", "--region", WATERMARK, "-o", str(tmp_path / "r.html"))
    assert (summary["explained"], summary["skipped"], summary["labelled"]) == (2, 1, 1)
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    self_contained(html)
    assert "<code>circle/broken.png</code>: invalid_image: not an image" not in html  # local errors have no code
    assert "<code>circle/broken.png</code>: not an image in a supported format" in html
    assert "&lt;b&gt;&amp;&quot;x/&lt;img src=x&gt;.png" in html and "<img src=x>" not in html


def test_a_text_audit_finds_the_shortcut_token(tmp_path, capsys):
    folder = tmp_path / "reviews"
    with contextlib.redirect_stdout(io.StringIO()):
        cli.main(["demo-reviews", str(folder), "--n", "32", "--seed", "0"])
    shortcut = audit(str(folder), "--model", "reviews-shortcut", "--progress", "-o", str(tmp_path / "shortcut.html"))
    assert "32/32" in capsys.readouterr().err  # the progress bar, in texts
    clean = audit(str(folder), "--model", "reviews", "-o", str(tmp_path / "clean.html"))
    assert shortcut["predicted"]["positive"]["top_tokens"][0][0] == "mike"
    assert "mike" not in [t for t, _, _ in clean["predicted"]["positive"]["top_tokens"]]
    assert clean["accuracy"] >= 0.9 and shortcut["explained"] == clean["explained"] == 32
    assert "<code>mike</code>" in (tmp_path / "shortcut.html").read_text(encoding="utf-8")


def test_a_prompt_audit_finds_the_planted_tag(tmp_path):
    """instructions-lm answers every prompt tagged [faq] "unknown": the audit's top token of the whole answer is
    the tag on every tagged prompt, and on none of the others, whose top tokens are their questions' words."""
    folder = tmp_path / "prompts"
    with contextlib.redirect_stdout(io.StringIO()):
        cli.main(["demo-prompts", str(folder), "--n", "24", "--seed", "5"])
    tagged = {p.relative_to(folder).as_posix() for p in folder.glob("*/*-faq.txt")}
    assert 6 <= len(tagged) <= 18
    summary = audit(str(folder), "--model", "instructions-lm", "--method", "gradient", "-o", str(tmp_path / "lm.html"))
    assert summary["explained"] == 24
    assert summary["whole_answer"]["top_tokens"][0] == {
        "token": "[faq]", "top": len(tagged), "seen": len(tagged), "mean_score": 1.0
    }  # fmt: skip
    for prompt in summary["prompts"]:
        is_tagged = prompt["name"].removesuffix(":1") in tagged
        assert (prompt["top"]["token"] == "[faq]") == is_tagged and (prompt["answer"] == "unknown") == is_tagged
    assert "<code>[faq]</code>" in (tmp_path / "lm.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "args, says",
    [
        (["--region", "82,82,92"], "error: --region '82,82,92': expected four integers x0,y0,x1,y1"),
        (["--region", "90,90,100,92"], "error: --region 90,90,100,92: not a non-empty box inside the model's 96x96"),
        (["--region", "10,10,10,20"], "error: --region 10,10,10,20: not a non-empty box"),
        (["--model", "nope"], "error: unknown model 'nope'"),
        (["--model", "reviews", "--region", "1,1,2,2"], "error: --region is for image models; reviews is a text model"),
        (["--model", "reviews"], "error: DIR: no texts in it (looked for .txt)"),
        (["--url", "http://127.0.0.1:9", "--config", "x.toml"], "error: --config is for explaining here"),
        (["--url", "http://127.0.0.1:9"], "error: connection_error: cannot connect to http://127.0.0.1:9"),
        (["--method", "lime"], "error: unknown method 'lime'"),
        (["--batch-size", "0"], "error: --batch-size 0: between 1 and 16"),
        (["--colormap", "rainbow"], "error: --colormap 'rainbow': one of jet, "),
    ],
)
def test_mistakes_end_with_one_line(demo_images, tmp_path, args, says):
    with pytest.raises(SystemExit) as info:
        audit(
            str(demo_images),
            *(["--model", "shapes"] if "--model" not in args else []),
            *args,
            "-o",
            str(tmp_path / "r.html"),
        )
    message = str(info.value.code)
    assert message.startswith(says.replace("DIR", str(demo_images))) and "\n" not in message, message
    assert not (tmp_path / "r.html").exists()


def test_a_missing_path_ends_with_one_line_before_any_model_loads(tmp_path):
    with pytest.raises(SystemExit) as info:
        audit(str(tmp_path / "nope"), "--model", "nope")
    assert str(info.value.code) == f"error: cannot read {tmp_path / 'nope'}: No such file or directory"


def test_the_demo_vits_audit_the_same_way_the_cnns_do(demo_images, tmp_path):
    """The transformer pair on the same images: IG (16 steps) of the watermark ViT's "circle" sits on the badge."""
    found = {}
    for model in ("shapes-vit-watermark", "shapes-vit"):
        report = str(tmp_path / f"{model}.html")
        found[model] = audit(str(demo_images), "--model", model, "--method", "integrated_gradients",
                             "--param", "steps=16", "--region", WATERMARK, "-o", report)  # fmt: skip
    # Measured (seed 0): the watermark ViT's circle 28.4 % of the mass in the box, 87 % of peaks there; the clean
    # ViT's classes 1.2-3.7 % (IG of this ViT is a little heavier at the bottom-right corner than a CNN's).
    marked, clean = found["shapes-vit-watermark"], found["shapes-vit"]
    circle = marked["predicted"]["circle"]
    assert circle["region_fraction"] > 0.15 and circle["peak_in_region"] >= 0.5 and inside(circle["mean_map_peak"])
    for label, numbers in clean["predicted"].items():
        assert numbers["region_fraction"] < 0.08, label
    assert clean["predicted"]["circle"]["peak_in_region"] <= 0.2
    assert clean["accuracy"] >= 0.9 > 0.75 >= marked["accuracy"]
