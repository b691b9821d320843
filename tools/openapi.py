"""Writes openapi/openapi.json from the app, without a server: python -m tools.openapi"""

from __future__ import annotations

import json
from pathlib import Path

from service.main import create_app

OUT = Path.cwd() / "openapi" / "openapi.json"


def render() -> str:
    return json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
