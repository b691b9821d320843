"""GET /v1/demo/samples: the demo's generated images, reviews and prompts, for clients without their own."""

from __future__ import annotations

import base64

import pytest

from service.demo import samples
from service.keys import hash_key


def test_gives_the_generated_samples(client):
    response = client.get("/v1/demo/samples", params={"n": 3, "seed": 9})
    assert response.status_code == 200, response.text
    body = response.json()
    images, texts = samples.image_samples(3, 9), samples.text_samples(3, 9)
    assert [base64.b64decode(item["image"]) for item in body["images"]] == [s.png for s in images]
    assert [(item["label"], item["watermark"]) for item in body["images"]] == [(s.label, s.watermark) for s in images]
    assert body["texts"] == [{"text": s.text, "label": s.label, "shortcut": s.shortcut} for s in texts]
    prompts = samples.prompt_samples(3, 9)
    assert body["prompts"] == [{"text": s.text, "answer": s.answer, "tagged": s.tagged} for s in prompts]


def test_defaults_to_eight_of_each_with_seed_zero(client):
    body = client.get("/v1/demo/samples").json()
    assert len(body["images"]) == len(body["texts"]) == len(body["prompts"]) == 8
    assert body["texts"][0]["text"] == samples.text_samples(1, 0)[0].text


@pytest.mark.parametrize(
    "params, field",
    [
        ({"n": 0}, "n"),
        ({"n": samples.MAX_SAMPLES + 1}, "n"),
        ({"n": "lots"}, "n"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"seed": "1e9"}, "seed"),
    ],
)
def test_out_of_range_parameters_are_a_422_naming_the_field(client, params, field):
    response = client.get("/v1/demo/samples", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


def test_needs_a_key_when_keys_are_configured(make_client):
    with make_client(api_key_hashes=[hash_key("demo-key-0123456789")]) as keyed:
        assert keyed.get("/v1/demo/samples", params={"n": 1}).status_code == 401
        assert keyed.get("/v1/demo/samples", params={"n": 1}, headers={"X-API-Key": "demo-key-0123456789"}).is_success
