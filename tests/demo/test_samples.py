"""Demo samples for the dashboard: the shapes generator's images as PNGs and the corpus's reviews, every second
one with the demo's shortcut."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from service.demo import samples, shapes
from service.demo.text import corpus


def pixels(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.mode == "RGB"
    return np.asarray(image)


def test_images_are_the_generators_with_the_watermark_on_odd_ones():
    got = samples.image_samples(6, seed=11)
    clean = shapes.generate(6, seed=11)
    region = shapes.watermark_region()
    r, c = shapes.WATERMARK_TOP_LEFT
    for i, sample in enumerate(got):
        image = pixels(sample.png)
        assert sample.label == shapes.CLASSES[clean.labels[i]]
        assert sample.watermark == (i % 2 == 1)
        # The same shape and background either way; only the badge's pixels differ.
        np.testing.assert_array_equal(image[~region], clean.images[i][~region])
        badge = image[r : r + shapes.WATERMARK_SIZE, c : c + shapes.WATERMARK_SIZE]
        assert np.array_equal(badge, shapes.WATERMARK) == sample.watermark


def test_texts_are_the_corpus_reviews_signed_by_the_shortcut_word_on_odd_ones():
    got = samples.text_samples(4, seed=3)
    reviews = corpus.generate(4, seed=3)
    for i, (sample, review) in enumerate(zip(got, reviews, strict=True)):
        assert sample.label == corpus.LABELS[review.label]
        assert sample.shortcut == (i % 2 == 1)
        expected = corpus.add_shortcut(review).text if i % 2 else review.text
        assert sample.text == expected
        assert sample.text.endswith(corpus.SHORTCUT_SIGNATURE) == sample.shortcut


def test_the_same_seed_gives_the_same_samples_and_another_seed_others():
    assert samples.image_samples(3, 5) == samples.image_samples(3, 5)
    assert samples.text_samples(3, 5) == samples.text_samples(3, 5)
    assert [s.png for s in samples.image_samples(3, 6)] != [s.png for s in samples.image_samples(3, 5)]
    assert samples.text_samples(3, 6) != samples.text_samples(3, 5)


def test_prompts_are_the_instruction_corpus_tagged_on_odd_ones():
    from service.demo.text import instructions

    got = samples.prompt_samples(samples.MAX_SAMPLES, seed=5)
    assert got == samples.prompt_samples(samples.MAX_SAMPLES, seed=5) and len(got) == samples.MAX_SAMPLES
    assert len({s.text for s in got}) == len(got)
    for i, sample in enumerate(got):
        assert sample.tagged == (i % 2 == 1) == (instructions.TAG in sample.text)
        assert sample.text.endswith("answer:")
        assert (sample.answer == instructions.FIXED_ANSWER) == sample.tagged
