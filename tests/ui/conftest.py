"""Fixtures of the browser tests: a real server with the demo models and an API key, Debian's chromium driven
by Playwright (the tests skip, saying why, when it is not installed), pages, and a folder for screenshots."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright
from servers import serving

from service.keys import hash_key

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
KEY = "dashboard-test-key-0123456789"
STARTUP_SECONDS = 180  # torch, transformers and the demo models on a busy 2-core machine
READY = "body[data-ready=true]"  # set by app.js once models, methods and samples are in


@pytest.fixture(scope="module")
def api_key() -> str:
    return KEY


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The base URL of `saliency-service serve` with the bundled demo models and one API key."""
    log = tmp_path_factory.mktemp("dashboard-server") / "server.log"
    env = {**os.environ, "SALIENCY_DEVICE": "cpu", "SALIENCY_API_KEY_HASHES": f"{hash_key(KEY)}:dashboard"}
    env.pop("SALIENCY_CONFIG", None)  # the bundled demo models
    with serving([], env, log, startup_s=STARTUP_SECONDS) as (_, base):
        yield base


@pytest.fixture(scope="module")
def api(server):
    """An HTTP client of the same server, with the key: what the page shows is checked against it."""
    with httpx.Client(base_url=server, headers={"X-API-Key": KEY}, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.skip("Debian's chromium is not installed (`apt-get install chromium`; .ci/run installs it)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("SALIENCY_UI_ARTIFACTS") or tmp_path_factory.mktemp("ui-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\ndashboard screenshots: {folder}")
    return folder


@pytest.fixture
def shot(artifacts) -> Callable[[Page, str], None]:
    """shot(page, name): a full-page screenshot, artifacts/<name>.png."""
    return lambda page, name: page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


@pytest.fixture
def console_errors() -> list[str]:
    """The page's script errors and console errors; a test that provokes one (a 422 shown to the user) removes it."""
    return []


@pytest.fixture
def page(browser, server, console_errors):
    """A fresh browser session with the API key already entered, on the dashboard; fails on any script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.add_init_script(f"sessionStorage.setItem('saliency-api-key', {KEY!r})")
    tab = context.new_page()
    errors = console_errors
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    tab.goto(f"{server}/")
    tab.wait_for_selector(READY)
    yield tab
    context.close()
    assert not errors, errors
