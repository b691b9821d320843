"""Writes openapi/openapi.json from the app, without a server: python scripts/gen_openapi.py"""

from __future__ import annotations

import json
from pathlib import Path

from service.main import create_app

OUT = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def render() -> str:
    return json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
