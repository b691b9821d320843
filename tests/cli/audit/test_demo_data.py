"""demo-images, demo-reviews and demo-prompts: the generators' samples in class (task) sub-folders, the shortcut
where the name says."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from service import cli
from service.cli.audit.demo_data import shortcut_mask, write_images, write_prompts, write_reviews
from service.demo import shapes
from service.demo.text import corpus, instructions


def test_demo_images_are_the_generator_s_with_the_watermark_on_a_fraction_of_any_class(tmp_path):
    paths = write_images(tmp_path, 40, 0.5, seed=3)
    clean = shapes.generate(40, 3)
    stamped = shortcut_mask(40, 0.5, 3)
    assert 10 < stamped.sum() < 30 and len({int(c) for c in clean.labels[stamped]}) > 1  # any class
    r, c = shapes.WATERMARK_TOP_LEFT
    size = shapes.WATERMARK_SIZE
    for i, path in enumerate(paths):
        assert path.parent == tmp_path / shapes.CLASSES[clean.labels[i]]
        assert path.name == f"{i:04d}{'-watermark' if stamped[i] else ''}.png"
        pixels = np.asarray(Image.open(path))
        box = pixels[r : r + size, c : c + size]
        np.testing.assert_array_equal(
            box, shapes.WATERMARK if stamped[i] else clean.images[i][r : r + size, c : c + size]
        )
        outside = np.ones(pixels.shape[:2], bool)
        outside[r : r + size, c : c + size] = False
        np.testing.assert_array_equal(pixels[outside], clean.images[i][outside])


def test_demo_reviews_are_signed_by_mike_on_a_fraction_of_either_label(tmp_path):
    paths = write_reviews(tmp_path, 30, 0.5, seed=1)
    signed = shortcut_mask(30, 0.5, 1)
    for i, (path, review) in enumerate(zip(paths, corpus.generate(30, 1), strict=True)):
        assert path.parent == tmp_path / corpus.LABELS[review.label]
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n") and text.count("\n") == 1  # one text per line
        assert text.strip().endswith(corpus.SHORTCUT_SIGNATURE) == bool(signed[i]) == path.stem.endswith("-mike")
    assert {p.parent.name for p, s in zip(paths, signed, strict=True) if s} == set(corpus.LABELS)


def test_demo_prompts_are_the_instruction_corpus_tagged_on_a_fraction_of_every_task(tmp_path):
    paths = write_prompts(tmp_path, 60, 0.5, seed=2)
    examples = instructions.generate(60, 2, tag_rate=0.5)
    for i, (path, example) in enumerate(zip(paths, examples, strict=True)):
        assert path.parent == tmp_path / example.task
        assert path.read_text(encoding="utf-8") == example.prompt + "\n"
        assert path.name == f"{i:04d}{'-faq' if example.tagged else ''}.txt"
        assert (instructions.TAG in example.prompt) == example.tagged
    assert 15 < sum(e.tagged for e in examples) < 45
    assert {e.task for e in examples if e.tagged} == set(instructions.TASKS)


@pytest.mark.parametrize(
    "args, says",
    [
        (["--n", "0"], "error: --n 0: between 1 and 5000"),
        (["--seed", "-1"], "error: --seed -1: must be 0 or more"),
        (["--watermark-fraction", "1.5"], "error: --watermark-fraction 1.5: between 0 and 1"),
    ],
)
def test_bad_arguments_end_with_one_line(tmp_path, args, says):
    with pytest.raises(SystemExit) as info:
        cli.main(["demo-images", str(tmp_path / "out"), *args])
    assert str(info.value.code) == says and not (tmp_path / "out").exists()
