"""An audit report in Chromium: it loads nothing but itself (every request other than the file is recorded, and
its Content-Security-Policy would block one), shows every picture, and logs no error."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The command's report (run as a process: Playwright's sync API holds this thread's event loop)."""
    folder = tmp_path_factory.mktemp("audit-ui")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SALIENCY_")}, "OMP_NUM_THREADS": "1"}
    for args in (
        ["demo-images", str(folder / "shapes"), "--n", "12", "--seed", "1"],
        ["audit", str(folder / "shapes"), "--model", "shapes-watermark", "--region", "82,82,92,92",
         "-o", str(folder / "report.html")],
    ):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "service.cli", *args], env=env, capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr.decode()
    return folder / "report.html"


def test_the_report_shows_every_picture_and_requests_nothing(browser, report, artifacts):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    tab = context.new_page()
    requests, errors = [], []
    tab.on("request", lambda request: requests.append(request.url))
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(report.as_uri())
    tab.wait_for_load_state("load")
    shown = tab.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
    assert len(shown) > 10 and all(shown)
    assert [url for url in requests if not url.startswith("data:")] == [report.as_uri()]
    assert not errors, errors
    assert tab.locator("h2#region").is_visible() and tab.locator("h2#truth").is_visible()
    tab.screenshot(path=str(artifacts / "audit-report.png"), full_page=True)
    context.close()
