"""/docs and /redoc load every script, style and icon from this app (the package's copies), none from a CDN,
whichever docs setting serves them."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from service.keys import hash_key

KEY = "k-docs-reader-0123456789"
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


class Links(HTMLParser):
    """Every URL a page makes the browser fetch: <script src>, <link href>, and the spec URL in its scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href", "spec-url"):  # ReDoc's <redoc spec-url=...>
            if found.get(name):
                self.urls.append(str(found[name]))

    def handle_data(self, data: str) -> None:
        self.scripts.append(data)


def fetched_urls(html: str) -> list[str]:
    links = Links()
    links.feed(html)
    # Swagger UI's page names its spec inside an inline script: `url: '/openapi.json'`.
    inline = [m for script in links.scripts for m in re.findall(r"""\burl:\s*['"]([^'"]+)['"]""", script)]
    return links.urls + inline


def check_page(client, path: str, headers: dict[str, str] | None = None) -> list[str]:
    response = client.get(path, headers=headers or {})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "http://" not in response.text and "https://" not in response.text  # no CDN, no web fonts
    # ReDoc's script asks its CDN for a logo: the page lets images come from here only.
    assert response.headers["content-security-policy"] == "img-src 'self' data:"
    urls = fetched_urls(response.text)
    assert len(urls) >= 2, urls
    for url in urls:
        assert url.startswith("/"), url
        extension = url[url.rindex(".") :]
        asset = client.get(url, headers=headers or {})
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[extension]), (url, asset.headers)
        assert len(asset.content) > (100_000 if extension == ".js" else 100), url
    return urls


def test_swagger_ui_is_served_by_the_app(client):
    urls = check_page(client, "/docs")
    assert {"/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css", "/openapi.json"} <= set(urls)


def test_redoc_is_served_by_the_app(client):
    urls = check_page(client, "/redoc")
    assert {"/docs-assets/redoc.standalone.js", "/openapi.json"} <= set(urls)


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "api-keys.txt"
    path.write_text(f"{hash_key(KEY)} docs-reader\n")
    return path


def test_behind_the_keys_the_pages_need_one_and_the_assets_do_not(make_client, keys_file):
    with make_client(api_keys=keys_file, docs="auth") as client:
        for page in ("/docs", "/redoc"):
            assert client.get(page).status_code == 401
            for url in check_page(client, page, {"X-API-Key": KEY}):
                # A browser sends no key for a <script> or a stylesheet; the spec is fetched by a tool with one.
                assert client.get(url).status_code == (401 if url == "/openapi.json" else 200), url


def test_off_serves_neither_pages_nor_assets(make_client):
    with make_client(docs="off") as client:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs-assets/swagger-ui-bundle.js"):
            assert client.get(path).status_code == 404, path
