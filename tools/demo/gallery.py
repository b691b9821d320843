"""Draws the README's picture: overlays from the demo models for each method, made by the service itself.

python -m tools.demo.gallery [-o service/demo/gallery.png]

Starts the real server on a free loopback port, POSTs demo images over HTTP and tiles the overlay PNGs
that come back, so the picture shows exactly what a client gets.
"""

from __future__ import annotations

import argparse
import base64
import io
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from PIL import Image, ImageDraw

from service.demo import shapes
from service.main import create_app
from service.settings import Settings

METHODS = {
    "gradient": "gradient",
    "smoothgrad": {"name": "smoothgrad", "samples": 32, "seed": 0},
    "integrated_gradients": {"name": "integrated_gradients", "steps": 32},
    "gradcam": "gradcam",
    "gradcam_pp": "gradcam_pp",
    "occlusion": {"name": "occlusion", "window": 16, "stride": 8},
}
TILE = 192


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png(image: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def rows() -> list[tuple[str, str, np.ndarray]]:
    """(model, caption, image): clean shapes for `shapes`; a watermarked circle for both models."""
    clean = shapes.generate(64, seed=2024)
    marked = shapes.generate(64, seed=2025, watermark_class=0, watermark_prob=1.0)
    picks = [("shapes", f"shapes: {shapes.CLASSES[c]}", clean.images[list(clean.labels).index(c)]) for c in (2, 3)]
    circle = marked.images[list(marked.labels).index(0)]
    return [
        *picks,
        ("shapes-watermark", "shapes-watermark: circle + watermark (looks at the watermark)", circle),
        ("shapes", "shapes, same image (looks at the circle)", circle),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "-o", "--output", default=str(Path(__file__).resolve().parents[2] / "service" / "demo" / "gallery.png")
    )
    args = parser.parse_args()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings()), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.1)
    picture_rows = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for model, caption, image in rows():
                tiles = [Image.fromarray(image).resize((TILE, TILE), Image.Resampling.NEAREST)]
                for method in METHODS.values():
                    r = client.post(
                        f"/v1/models/{model}/explain",
                        headers={"accept": "image/png"},
                        json={"images": [png(image)], "method": method},
                    )
                    r.raise_for_status()
                    tiles.append(Image.open(io.BytesIO(r.content)).resize((TILE, TILE), Image.Resampling.NEAREST))
                picture_rows.append((caption, tiles))
    finally:
        server.should_exit = True
        thread.join()
    header, caption_h = 24, 20
    width = TILE * (len(METHODS) + 1)
    sheet = Image.new("RGB", (width, header + len(picture_rows) * (TILE + caption_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, name in enumerate(["input", *METHODS]):
        draw.text((j * TILE + 6, 6), name, fill="black")
    for i, (caption, tiles) in enumerate(picture_rows):
        top = header + i * (TILE + caption_h)
        draw.text((6, top + 3), caption, fill="black")
        for j, tile in enumerate(tiles):
            sheet.paste(tile, (j * TILE, top + caption_h))
    sheet.save(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
