"""The committed openapi/openapi.json is what the app generates (regenerate: python -m tools.openapi)."""

from __future__ import annotations

import json
from pathlib import Path

from openapi_spec_validator import validate

from tools import openapi

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_document_is_up_to_date():
    assert COMMITTED.read_text() == openapi.render(), (
        "openapi/openapi.json is stale: run `python -m tools.openapi` and commit the result"
    )


def test_served_document_is_the_committed_one(client):
    # The settings of a running app (its models, limits, CORS) do not change the document.
    assert client.get("/openapi.json").json() == json.loads(COMMITTED.read_text())


def refs(node) -> list[str]:
    """Every `$ref` in a JSON document."""
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


def test_committed_document_is_valid_openapi():
    document = json.loads(COMMITTED.read_text())
    validate(document)
    found = refs(document)
    assert found
    for ref in found:
        assert ref.startswith("#/"), ref  # nothing outside the document
        node = document
        for part in ref.removeprefix("#/").split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            assert isinstance(node, dict) and part in node, f"dangling $ref {ref}"
            node = node[part]


def test_document_covers_the_api():
    document = json.loads(COMMITTED.read_text())
    assert {
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/models",
        "/v1/models/{name}",
        "/v1/methods",
        "/v1/models/{name}/predict",
        "/v1/models/{name}/explain",
    } <= set(document["paths"])
    explain = document["paths"]["/v1/models/{name}/explain"]["post"]
    raw = {f"image/{kind}" for kind in ("png", "jpeg", "webp", "gif", "bmp", "tiff")}
    assert set(explain["requestBody"]["content"]) == {"application/json", "multipart/form-data", *raw}
    query = {p["name"] for p in explain["parameters"] if p["in"] == "query"}
    assert {"spec", "method", "target", "top_k", "output"} <= query  # a raw image's spec
    assert {"X-Saliency-Target", "X-Saliency-Label"} <= set(explain["responses"]["200"]["headers"])
    assert "image/png" in explain["responses"]["200"]["content"]
    for status in ("404", "413", "415", "422", "503"):
        assert explain["responses"][status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"
        }
