"""`saliency-service audit` on a demo detector: every box explained, per class the mean map in box
coordinates and the share inside the box; the watermark detector's mean circle box map peaks at the badge's
corner (top left), the clean detector's does not, the report is self-contained, and --region is refused."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from service import cli


def audit(*args: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.main(["audit", *args])
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def scenes_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scenes")
    with contextlib.redirect_stdout(io.StringIO()):
        cli.main(["demo-scenes", str(folder), "--n", "12", "--seed", "96000", "--badge-fraction", "1"])
    return folder


def test_the_watermark_detectors_mean_circle_box_looks_at_its_corner(scenes_folder, tmp_path, self_contained):
    found = {}
    for model in ("shapes-detector-watermark", "shapes-detector"):
        report = tmp_path / f"{model}.html"
        found[model] = audit(str(scenes_folder), "--model", model, "--method", '{"name": "drise", "masks": 300}',
                             "-o", str(report))  # fmt: skip
        assert found[model]["explained"] == 12 and found[model]["boxes"] > 12
        tags = self_contained(report.read_text(encoding="utf-8"))
        assert [a.get("id") for t, a in tags if t == "h2"] == ["classes"]
    marked, clean = found["shapes-detector-watermark"]["per_class"], found["shapes-detector"]["per_class"]
    u, v = marked["circle"]["mean_box_map_peak"]
    assert u < 0.35 and v < 0.35, marked["circle"]  # the badge sits inside the box's top-left corner
    for label, numbers in marked.items():
        assert 0 <= numbers["inside_box"] <= 1, label
    assert set(clean) >= {"square", "triangle", "star"}
    if "circle" in clean:  # the clean detector finds some badged circles, and looks at the circle
        cu, cv = clean["circle"]["mean_box_map_peak"]
        assert cu > 0.35 or cv > 0.35, clean["circle"]


def test_a_region_is_refused_for_a_detector(scenes_folder, tmp_path):
    with pytest.raises(SystemExit) as info:
        audit(str(scenes_folder), "--model", "shapes-detector", "--region", "1,1,5,5", "-o", str(tmp_path / "r.html"))
    assert str(info.value.code) == "error: --region is for classifiers: a detector's audit measures each box's own box"
