"""The dashboard: static files from the package at /ui/, and `/` redirecting to it. Not in the OpenAPI
document (it is a client of the API, not part of it) and not behind the API keys (the page holds no data; it
asks for a key when the API answers 401)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).resolve().parents[1] / "ui" / "static"
# Everything from this origin only: the page works offline, and a CDN or an injected script cannot load.
POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


@router.get("/")
@router.get("/ui")
def to_dashboard() -> RedirectResponse:
    # Relative, so that it also works behind a proxy that serves the app under a path prefix.
    return RedirectResponse("ui/")


class DashboardFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/ui", DashboardFiles(directory=STATIC, html=True), name="ui")
