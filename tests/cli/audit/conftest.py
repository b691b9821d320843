"""Fixtures of the audit tests: a check that a report is self-contained and escaped."""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser

import pytest


class Elements(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def check_self_contained(page: str) -> list[tuple[str, dict[str, str | None]]]:
    """Asserts the page needs nothing else: no scripts, links, frames or URLs, every <img> a data: URI, and a
    Content-Security-Policy that forbids loading anything but data: images. Returns its elements."""
    parser = Elements()
    parser.feed(page)
    parser.close()
    tags = parser.tags
    names = {tag for tag, _ in tags}
    assert not names & {"script", "link", "iframe", "object", "embed", "base", "form"}, names
    images = [attrs for tag, attrs in tags if tag == "img"]
    assert images and all((a.get("src") or "").startswith("data:image/png;base64,") for a in images)
    for tag, attrs in tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)  # no event handlers
            if name in ("href", "src", "action", "srcset", "poster"):
                assert (value or "").startswith("data:"), (tag, name, value)
    assert "http://" not in page and "https://" not in page and "url(" not in page
    policies = [
        a.get("content") for tag, a in tags if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert policies == ["default-src 'none'; img-src data:; style-src 'unsafe-inline'"]
    return tags


@pytest.fixture
def self_contained() -> Callable[[str], list]:
    return check_self_contained
