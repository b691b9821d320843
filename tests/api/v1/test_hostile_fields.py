"""Hostile values in every field a client controls, in JSON bodies and multipart forms: each gets a 4xx JSON
error, never a 500 (a 5000-digit integer, nesting 10000 deep, non-ASCII digits, NaN, lone surrogates)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

EXPLAIN = "/v1/models/shapes18/explain"
PREDICT = "/v1/models/shapes18/predict"
JSON = {"content-type": "application/json"}

DIGITS = "9" * 5000  # over Python's int-string limit (4300 digits)
BIG = "9" * 4000  # under it: parses, then must be refused by the schema or a limit
DEEP_LIST = "[" * 10_000 + "]" * 10_000
DEEP_OBJECT = '{"a": ' * 10_000 + "1" + "}" * 10_000
IG = '"name": "integrated_gradients"'


@dataclass(frozen=True)
class Hostile:
    id: str
    status: int
    build: Callable[[bytes], dict]  # the good image's bytes -> keyword arguments of client.post


def as_json(*members: str) -> Callable[[bytes], dict]:
    """A JSON body written by hand: Python's json cannot write a 5000-digit integer or a lone surrogate."""

    def build(image: bytes) -> dict:
        images = f'"images": ["{base64.b64encode(image).decode()}"]'
        return {"content": "{" + ", ".join((images, *members)) + "}", "headers": JSON}

    return build


def as_form(spec_file: str | bytes | None = None, **fields: str) -> Callable[[bytes], dict]:
    """A multipart body: one image part, plain fields (`spec` among them, maybe) and a `spec` file part."""

    def build(image: bytes) -> dict:
        files = [("image", ("good.jpg", image, "image/jpeg"))]
        if spec_file is not None:
            files.append(("spec", ("spec.json", spec_file, "application/json")))
        return {"files": files, "data": fields}

    return build


JSON_CASES = [
    Hostile("top_k 5000 digits", 422, as_json(f'"top_k": {DIGITS}')),
    Hostile("top_k 4000 digits", 422, as_json(f'"top_k": {BIG}')),
    Hostile("top_k minus 5000 digits", 422, as_json(f'"top_k": -{DIGITS}')),
    Hostile("top_k 1e400", 422, as_json('"top_k": 1e400')),
    Hostile("top_k NaN", 422, as_json('"top_k": NaN')),
    Hostile("top_k superscript digit", 422, as_json('"top_k": "\u00b2"')),
    Hostile("top_k deep", 422, as_json(f'"top_k": {DEEP_LIST}')),
    Hostile("target 5000 digits", 422, as_json(f'"target": {DIGITS}')),
    Hostile("target 4000 digits", 422, as_json(f'"target": {BIG}')),
    Hostile("target list of 5000 digits", 422, as_json(f'"target": [{DIGITS}]')),
    Hostile("target superscript digit", 422, as_json('"target": "\u00b2"')),
    Hostile("target Arabic-Indic digit", 422, as_json('"target": "\u0663"')),
    Hostile("target NaN", 422, as_json('"target": NaN')),
    Hostile("target Infinity", 422, as_json('"target": Infinity')),
    Hostile("target deep", 422, as_json(f'"target": {DEEP_LIST}')),
    Hostile("target label with an accent", 422, as_json('"target": "c\u00edrcle"')),
    Hostile("target lone surrogate", 422, as_json('"target": "\\ud800"')),
    Hostile("method deep list", 422, as_json(f'"method": {DEEP_LIST}')),
    Hostile("method deep object", 422, as_json(f'"method": {DEEP_OBJECT}')),
    Hostile("method parameter deep", 422, as_json(f'"method": {{"name": "gradient", "x": {DEEP_LIST}}}')),
    Hostile("steps 5000 digits", 422, as_json(f'"method": {{{IG}, "steps": {DIGITS}}}')),
    Hostile("steps 4000 digits", 422, as_json(f'"method": {{{IG}, "steps": {BIG}}}')),
    Hostile("steps fullwidth digit", 422, as_json(f'"method": {{{IG}, "steps": "\uff15"}}')),
    Hostile("steps NaN", 422, as_json(f'"method": {{{IG}, "steps": NaN}}')),
    Hostile("seed 4000 digits", 422, as_json(f'"method": {{{IG}, "seed": {BIG}}}')),
    Hostile("blur_sigma 1e400", 422, as_json(f'"method": {{{IG}, "blur_sigma": 1e400}}')),
    Hostile("blur_sigma NaN", 422, as_json(f'"method": {{{IG}, "blur_sigma": NaN}}')),
    Hostile("noise NaN", 422, as_json('"method": {"name": "smoothgrad", "noise": NaN}')),
    Hostile("noise Infinity", 422, as_json('"method": {"name": "smoothgrad", "noise": Infinity}')),
    Hostile("noise -Infinity", 422, as_json('"method": {"name": "smoothgrad", "noise": -Infinity}')),
    Hostile("window 1e400", 422, as_json('"method": {"name": "occlusion", "window": 1e400}')),
    Hostile("alpha NaN", 422, as_json('"output": {"alpha": NaN}')),
    Hostile("alpha Infinity", 422, as_json('"output": {"alpha": Infinity}')),
    Hostile("alpha -Infinity", 422, as_json('"output": {"alpha": -Infinity}')),
    Hostile("alpha 1e308", 422, as_json('"output": {"alpha": 1e308}')),
    Hostile("alpha 1e400", 422, as_json('"output": {"alpha": 1e400}')),
    Hostile("alpha 5000 digits", 422, as_json(f'"output": {{"alpha": {DIGITS}}}')),
    Hostile("colormap with an accent", 422, as_json('"output": {"colormap": "j\u00e9t"}')),
    Hostile("method name with an accent", 404, as_json('"method": "gradi\u00e9nt"')),
    Hostile("method name fullwidth", 404, as_json('"method": "\uff47\uff52\uff41\uff44\uff49\uff45\uff4e\uff54"')),
    Hostile("method name right-to-left override", 404, as_json('"method": {"name": "\\u202egradient"}')),
    Hostile("method name NUL", 404, as_json('"method": "\\u0000"')),
    Hostile("method name emoji", 404, as_json('"method": "' + "\U0001f600" * 1000 + '"')),
    Hostile("method name lone surrogate", 422, as_json('"method": "\\ud800"')),
    Hostile("field name lone surrogate", 422, as_json('"\\udfff": 1')),
    Hostile("field name with an accent", 422, as_json('"t\u00f3p_k": 1')),
    # Strict, as the published schema says: a JSON string is not a number, nor true a 1.
    Hostile("top_k a string", 422, as_json('"top_k": "5"')),
    Hostile("steps a string", 422, as_json(f'"method": {{{IG}, "steps": "5"}}')),
    Hostile("steps true", 422, as_json(f'"method": {{{IG}, "steps": true}}')),
    Hostile("steps 5.0", 422, as_json(f'"method": {{{IG}, "steps": 5.0}}')),
    Hostile("spec steps a string", 422, as_form(spec_file=f'{{"method": {{{IG}, "steps": "5"}}}}')),
    Hostile("heatmap a string", 422, as_json('"output": {"heatmap": "true"}')),
    Hostile("alpha a string", 422, as_json('"output": {"alpha": "0.5"}')),
    Hostile("images deep", 422, lambda image: {"content": '{"images": ' + DEEP_LIST + "}", "headers": JSON}),
    # Content-Length, as an app can get it (a server in front may refuse these first).
    Hostile(
        "Content-Length 5000 digits",
        413,
        lambda image: {"content": "{}", "headers": {**JSON, "content-length": DIGITS}},
    ),
]

FORM_CASES = [
    Hostile("form top_k superscript digit", 422, as_form(top_k="\u00b2")),
    Hostile("form top_k 5000 digits", 422, as_form(top_k=DIGITS)),
    Hostile("form top_k Arabic-Indic digit", 422, as_form(top_k="\u0663")),
    Hostile("form top_k empty", 422, as_form(top_k="")),
    Hostile("form top_k negative", 422, as_form(top_k="-1")),
    Hostile("form top_k 1e400", 422, as_form(top_k="1e400")),
    Hostile("form top_k NaN", 422, as_form(top_k="NaN")),
    Hostile("form target 5000 digits", 422, as_form(target=DIGITS)),
    Hostile("form target superscript digit", 422, as_form(target="\u00b2")),
    Hostile("form output not an object", 422, as_form(output="{}")),
    Hostile("form field name with an accent", 422, as_form(**{"t\u00f3p_k": "1"})),
    Hostile("form method fullwidth", 404, as_form(method="\uff47\uff52\uff41\uff44\uff49\uff45\uff4e\uff54")),
    Hostile("form method NUL", 404, as_form(method="\x00")),
    Hostile("spec deep list", 422, as_form(spec_file=f'{{"method": {DEEP_LIST}}}')),
    Hostile("spec deep object", 422, as_form(spec_file=DEEP_OBJECT)),
    Hostile("spec top_k 5000 digits", 422, as_form(spec_file=f'{{"top_k": {DIGITS}}}')),
    Hostile("spec target 5000 digits", 422, as_form(spec_file=f'{{"target": {DIGITS}}}')),
    Hostile("spec steps 5000 digits", 422, as_form(spec_file=f'{{"method": {{{IG}, "steps": {DIGITS}}}}}')),
    Hostile("spec alpha NaN", 422, as_form(spec_file='{"output": {"alpha": NaN}}')),
    Hostile("spec not UTF-8", 422, as_form(spec_file=b'{"method": "\xff"}')),
    Hostile("spec a JSON string", 422, as_form(spec_file='"gradient"')),
    Hostile("spec as a plain field, deep", 422, as_form(spec=f'{{"target": {DEEP_LIST}}}')),
]

CASES = JSON_CASES + FORM_CASES


@pytest.fixture(scope="module")
def good(photos) -> bytes:
    return photos["chelsea.jpg"].data


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_value_gets_a_json_4xx(client, good, case):
    response = client.post(EXPLAIN, **case.build(good))
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert len(response.content) < 20_000, "the error echoes the hostile input back"


def test_a_normal_request_still_succeeds(client, good):
    for path in (PREDICT, EXPLAIN):
        response = client.post(path, json={"images": [base64.b64encode(good).decode()], "top_k": 2})
        assert response.status_code == 200, response.text


def explained(client, good: bytes, **fields: str) -> dict:
    response = client.post(EXPLAIN, files=[("image", ("good.jpg", good, "image/jpeg"))], data=fields)
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    return result


def test_form_target_digits_are_a_class_index_like_json(client, good, explain_json):
    by_form = explained(client, good, target="1", method="gradcam")
    (by_json,) = explain_json(base64.b64encode(good).decode(), target=1, method="gradcam")["results"]
    assert by_form["target"]["index"] == 1 and by_form["target"]["label"] == "square"
    assert by_form["target"] == by_json["target"] and by_form["saliency"] == by_json["saliency"]


def test_form_target_label_and_predicted(client, good):
    assert explained(client, good, target="circle", method="gradcam")["target"]["index"] == 0
    predicted = explained(client, good, target="predicted", method="gradcam")
    assert predicted["target"] == predicted["predictions"][0]


def test_form_fields_and_a_spec_part_merge_with_the_spec_winning(client, good):
    spec = json.dumps({"target": 2, "method": "gradcam"}).encode()
    files = [("image", ("good.jpg", good, "image/jpeg")), ("spec", ("spec.json", spec, "application/json"))]
    response = client.post(EXPLAIN, files=files, data={"target": "1", "top_k": "2"})
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert result["target"]["index"] == 2 and len(result["predictions"]) == 2


def test_an_integer_is_a_number(client, good, explain_json):
    method = {"name": "smoothgrad", "samples": 2, "noise": 0}
    assert explain_json(base64.b64encode(good).decode(), method=method, output={"alpha": 1})["method"]["noise"] == 0
