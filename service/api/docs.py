"""/docs (Swagger UI) and /redoc with their scripts, styles and icon served by this app from fastapi-offline's
copies, not from a CDN: the pages work offline and behind a firewall.

settings.docs: `open` serves the pages and /openapi.json to anyone; `auth` puts the pages and /openapi.json
behind the API keys (the assets stay open: a browser sends no key for a <script>, and they are public
library code); `off` serves none of it.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from .auth import require_key

ASSETS_URL = "/docs-assets"
ASSETS = files("fastapi_offline") / "static"  # swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon
# ReDoc's menu shows a logo from its CDN (it hides itself when that fails): images from here only, so the page
# asks nothing of the network.
POLICY = {"Content-Security-Policy": "img-src 'self' data:"}


def install(app: FastAPI, keyed: bool) -> None:
    """The pages (and, when keyed, /openapi.json, which FastAPI's own route cannot put behind a dependency)."""
    router = APIRouter(include_in_schema=False, dependencies=[Depends(require_key)] if keyed else [])
    openapi_url = "/openapi.json"

    if keyed:

        @router.get(openapi_url)
        def openapi() -> JSONResponse:
            return JSONResponse(app.openapi())

    @router.get("/docs")
    def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")  # behind a proxy's path prefix, the URLs keep it
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - docs",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        page.headers.update(POLICY)
        return page

    @router.get("/redoc")
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers.update(POLICY)
        return page

    app.include_router(router)
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS)), name="docs-assets")
