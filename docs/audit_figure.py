"""Makes docs/audit.png, the README's excerpt of two audit reports: runs the README's "Dataset audit" commands
(200 demo images, half watermarked; both shapes models with the watermark as the region), then screenshots
each report's title, region tables and mean "circle" row with Debian's Chromium (Playwright).

    python docs/audit_figure.py [WORKDIR]    # needs the dev extras and /usr/bin/chromium
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

FIGURE = Path(__file__).with_name("audit.png")
MODELS = ("shapes-watermark", "shapes")
PARTS = (  # what to show of each report, top to bottom
    "h1",
    "xpath=//h2[@id='region']/following-sibling::div[1]",
    "xpath=//h2[@id='predicted']/following-sibling::h3[text()='circle'][1]",
    "xpath=//h2[@id='predicted']/following-sibling::h3[text()='circle'][1]/following-sibling::div[1]",
)


def command(*args: str) -> None:
    subprocess.run(["saliency-service", *args], check=True, stdout=subprocess.DEVNULL)


def main(work: Path) -> None:
    command("demo-images", str(work / "demo-shapes"), "--n", "200", "--seed", "0")
    for model in MODELS:
        command("audit", str(work / "demo-shapes"), "--model", model, "--method", "gradient",
                "--region", "82,82,92,92", "-o", str(work / f"{model}.html"))  # fmt: skip
    pieces: list[Image.Image] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        tab = browser.new_page(viewport={"width": 1000, "height": 800})
        for model in MODELS:
            tab.goto((work / f"{model}.html").as_uri())
            for selector in PARTS:
                pieces.append(Image.open(io.BytesIO(tab.locator(selector).first.screenshot())).convert("RGB"))
            pieces.append(Image.new("RGB", (1, 24), "white"))  # a gap between the two reports
        browser.close()
    width = max(p.width for p in pieces)
    figure = Image.new("RGB", (width, sum(p.height for p in pieces[:-1])), "white")
    top = 0
    for piece in pieces[:-1]:
        figure.paste(piece, (0, top))
        top += piece.height
    figure.quantize(colors=256, dither=Image.Dither.NONE).save(FIGURE, optimize=True)
    print(f"wrote {FIGURE} ({FIGURE.stat().st_size // 1024} KB, {figure.width}x{figure.height})")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="audit-figure-")))
