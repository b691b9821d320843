"""The dashboard's files: served from the package at /ui/ (`/` redirects there), from this origin only, and
outside the API keys and the OpenAPI document. Its behaviour in a browser: tests/ui/test_dashboard.py."""

from __future__ import annotations

import re

import pytest

from service.api.ui import STATIC
from service.keys import hash_key

FILES = sorted(path.name for path in STATIC.iterdir())


@pytest.mark.parametrize("path", ["/", "/ui"])
def test_redirects_to_the_dashboard(client, path):
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "ui/"
    assert client.get(path).url.path == "/ui/"


def test_serves_the_page_with_a_same_origin_policy(client):
    response = client.get("/ui/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.text == (STATIC / "index.html").read_text()
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy


@pytest.mark.parametrize("name", FILES)
def test_serves_every_file_of_the_package(client, name):
    response = client.get(f"/ui/{name}")
    assert response.status_code == 200 and response.content == (STATIC / name).read_bytes()
    kind = {"html": "text/html", "js": "text/javascript", "css": "text/css"}[name.rsplit(".", 1)[1]]
    assert response.headers["content-type"].startswith(kind)


def test_everything_the_page_loads_is_in_the_package():
    """No CDN: every src/href and every module import is a relative path to a file that is there."""
    page = (STATIC / "index.html").read_text()
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert "app.js" in links and "style.css" in links
    for name in FILES:
        if name.endswith(".js"):
            links += re.findall(r'from "([^"]+)"', (STATIC / name).read_text())
    for link in links:
        if link.startswith("data:"):
            continue
        assert not re.match(r"^[a-z]+:|^//|^/", link), link
        assert (STATIC / link.removeprefix("./")).is_file(), link


@pytest.mark.parametrize("path", ["/ui/../main.py", "/ui/%2e%2e/main.py", "/ui/missing.js"])
def test_nothing_else_is_served_from_there(client, path):
    response = client.get(path)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_the_page_needs_no_key_while_the_api_does(make_client):
    with make_client(api_key_hashes=[hash_key("ui-key-0123456789")]) as keyed:
        assert keyed.get("/ui/").status_code == 200 and keyed.get("/ui/app.js").status_code == 200
        assert keyed.get("/v1/models").status_code == 401


def test_is_not_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/demo/samples" in paths
    assert not [path for path in paths if path == "/" or path.startswith("/ui")]
