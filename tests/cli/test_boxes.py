"""`saliency-service explain` on a detection model (the demo's shapes-detector): the overlay of every box and
one per box, named after its image and the box's index; the detections in the summary; the client's boxes
through --target; the same answer and files through a server; one-line refusals of what makes no sense for
boxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service import cli
from service.demo import scenes
from service.demo.shapes import CLASSES

MODEL = ["--model", "shapes-detector"]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def scene_png(path: Path, seed: int = 5) -> list[tuple[list[int], str]]:
    """Writes a generated scene (128x128, 1-4 shapes); returns its shapes' boxes and labels."""
    scene = scenes.generate(1, seed=seed)
    Image.fromarray(scene.images[0]).save(path)
    return [(box.tolist(), CLASSES[label - 1]) for box, label in zip(scene.boxes[0], scene.labels[0], strict=True)]


def iou(a: list[float], b: list[float]) -> float:
    w, h = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_explain_writes_the_overlay_of_every_box_and_one_per_box(tmp_path, capsys):
    truth = scene_png(tmp_path / "scene.png")
    out = tmp_path / "scene-overlay.png"
    cli.main(["explain", str(tmp_path / "scene.png"), *MODEL, "--method", "gradcam", "-o", str(out)])
    summary = json.loads(capsys.readouterr().out)
    assert (summary["model"], summary["target"], summary["overlay"]) == ("shapes-detector", "detections", str(out))
    assert summary["method"] == {"name": "gradcam", "layer": "backbone.body.stage4"}
    found = summary["detections"]
    assert len(found) == len(truth) == 3
    for detection in found:  # the trained detector finds each shape, with its class
        assert max(iou(detection["box"], box) for box, label in truth if label == detection["label"]) > 0.8
        assert detection["score"] >= 0.5 and CLASSES[detection["index"] - 1] == detection["label"]
    assert [d["overlay"] for d in found] == [str(tmp_path / f"scene-overlay-box{j}.png") for j in range(3)]
    assert all(Image.open(path).size == (128, 128) for path in [out, *(d["overlay"] for d in found)])
    assert len({Path(d["overlay"]).read_bytes() for d in found}) == 3  # each box on its own map


def test_a_folder_gives_each_image_its_boxes_and_no_file_overwrites_another(tmp_path, capfd):
    folder, out = tmp_path / "scenes", tmp_path / "out"
    folder.mkdir()
    scene_png(folder / "a.png", seed=5)
    scene_png(folder / "a-box0.png", seed=6)  # the name a.png's first box would take
    cli.main(["explain", str(folder), *MODEL, "--method", "gradient", "--progress", "-o", str(out)])
    stdout, stderr = capfd.readouterr()
    summaries = json.loads(stdout)
    assert [s["overlay"] for s in summaries] == [str(out / "a-box0.png"), str(out / "a.png")]
    boxes = [d["overlay"] for s in summaries for d in s["detections"]]
    assert str(out / "a-box0-2.png") in boxes  # a.png's first box
    written = [s["overlay"] for s in summaries] + boxes
    assert len(set(written)) == len(written) and sorted(str(p) for p in out.iterdir()) == sorted(written)
    assert "2/2" in stderr and "image" in stderr


def test_the_boxes_of_target_are_explained_in_every_image_and_scored_by_their_affinity(tmp_path, capsys):
    (box, label), *_ = truth = scene_png(tmp_path / "a.png")
    scene_png(tmp_path / "b.png", seed=6)
    mine = [{"box": box, "label": label}, {"box": [0, 0, 20, 20], "label": "star"}]  # a shape, an empty corner
    images = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    cli.main(["explain", *images, *MODEL, "--method", "gradient", "--target", json.dumps(mine), "-o", str(tmp_path)])
    summaries = json.loads(capsys.readouterr().out)
    assert truth and [s["target"] for s in summaries] == [mine, mine]
    for summary in summaries:
        found = summary["detections"]
        assert [(d["box"], d["label"]) for d in found] == [(b["box"], b["label"]) for b in mine]
        assert all(Image.open(d["overlay"]).size == (128, 128) for d in found)
    a = summaries[0]["detections"]
    assert a[0]["score"] > 0.5 > 0.05 > a[1]["score"]  # the shape's detection matches it; nothing is in the corner


@pytest.mark.parametrize(
    "args, says",
    [
        (["--target", "1"], "error: --target '1': 'shapes-detector' is a detection model: its target is detections"),
        (["--target", "circle"], "error: --target 'circle': 'shapes-detector' is a detection model: "),
        (["--target", '[{"box": [NaN, 0, 10, 10], "label": 1}]'], "error: --target: not valid JSON: NaN is not a JSON"),
        (["--target", '[{"box": [0, 0'], "error: --target: not valid JSON: "),
        (["--target", '[[{"box": [0, 0, 10, 10], "label": 1}]]'], "error: --target: one list of boxes, explained in"),
        (["--target", '[{"box": [10, 10, 5, 20], "label": 1}]'], "error: --target: target.0.box: box needs finite x0"),
        (["--target", '[{"box": [0, 0, 9, 9], "label": "dog"}]'], "error: --target: target.0.label: label must be "),
        (["--target", '[{"box": [500, 500, 600, 600], "label": 1}]'], "error: box [500.0, 500.0, 600.0, 600.0] lies "),
        (["--target", json.dumps([{"box": [0, 0, 9, 9], "label": 1}] * 10_000)], "error: at most 10 boxes per image"),
        (["--method", "smoothgrad"], "error: smoothgrad does not explain detection models; it supports: "),
    ],
)
def test_what_makes_no_sense_for_boxes_is_refused_in_one_line(tmp_path, args, says):
    scene_png(tmp_path / "s.png")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["explain", str(tmp_path / "s.png"), *MODEL, *args, "-o", str(tmp_path / "o.png")])
    message = str(exit_info.value.code)
    assert message.startswith(says) and "\n" not in message, message
    assert not (tmp_path / "o.png").exists()


def test_through_a_server_the_summary_and_the_files_are_the_same(tmp_path, capfd, demo_server, monkeypatch):
    monkeypatch.setenv("SALIENCY_API_KEY", demo_server.api_key)
    scene_png(tmp_path / "s.png")
    common = ["explain", str(tmp_path / "s.png"), *MODEL, "--method", "gradcam"]
    cli.main([*common, "--url", demo_server.url, "-o", str(tmp_path / "remote.png")])
    remote = json.loads(capfd.readouterr().out)
    cli.main([*common, "-o", str(tmp_path / "local.png")])
    local = json.loads(capfd.readouterr().out)

    # The server is another process (its own threads): numbers and pixels agree to rounding.
    def pictures(summary: dict) -> list[np.ndarray]:
        paths = [summary["overlay"], *(d["overlay"] for d in summary["detections"])]
        return [np.asarray(Image.open(path), dtype=np.float64) for path in paths]

    def numbers(summary: dict) -> list[float]:
        return [v for d in summary["detections"] for v in [*d["box"], d["score"]]]

    def words(summary: dict) -> dict:
        detections = [
            {k: v for k, v in d.items() if k not in ("box", "score", "overlay")} for d in summary["detections"]
        ]
        return {**summary, "overlay": None, "detections": detections}

    assert words(remote) == words(local) and len(remote["detections"]) == 3
    np.testing.assert_allclose(numbers(remote), numbers(local), rtol=1e-5)
    for there, here in zip(pictures(remote), pictures(local), strict=True):
        assert there.shape == here.shape == (128, 128, 3) and np.abs(there - here).mean() < 0.5
    with pytest.raises(SystemExit) as exit_info:  # the server's refusal of a box keeps its code
        cli.main([*common, "--url", demo_server.url, "--target", '[{"box": [5, 5, 1, 9], "label": 1}]'])
    assert str(exit_info.value.code) == (
        "error: invalid_target: --target: target.0.box: box needs finite x0 < x1 and y0 < y1"
    )
