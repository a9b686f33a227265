"""Swagger UI at ``/docs``, served from assets installed with the package (``fastapi-offline``), never a CDN."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

from .errors import InstallError

DOCS_URL = "/docs"
REDIRECT_URL = "/docs/oauth2-redirect"
DOCS_CONTRACT_URL = "/docs/openapi.json"
THIS_SERVER = {"url": "/", "description": "This server (the one serving these docs)."}
ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
# URL path under /docs -> (file in ASSETS_DIR, content type)
ASSETS = {
    "/docs/swagger-ui-bundle.js": ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "/docs/swagger-ui.css": ("swagger-ui.css", "text/css; charset=utf-8"),
    "/docs/favicon.png": ("favicon.png", "image/png"),
}
ASSET_CACHE = {"Cache-Control": "public, max-age=86400"}
DOCS_PATHS = (DOCS_URL, REDIRECT_URL, DOCS_CONTRACT_URL, *ASSETS)


def _asset_route(router: APIRouter, url: str, path: Path, media_type: str) -> None:
    @router.get(url, include_in_schema=False)
    async def asset() -> FileResponse:
        return FileResponse(path, media_type=media_type, headers=ASSET_CACHE)


def docs_contract(contract: dict[str, Any]) -> dict[str, Any]:
    """The contract as Swagger UI reads it: this server first among its ``servers``, as a relative URL.

    So "Try it out" and Authorize reach the server that served the page, whatever host and port it is
    reached by (the contract's own server is ``127.0.0.1:8000``: another port, or ``localhost``, would
    be another origin). ``/openapi.json`` stays the contract verbatim.
    """
    return {**contract, "servers": [THIS_SERVER, *contract.get("servers", [])]}


def docs_router(contract: dict[str, Any]) -> APIRouter:
    """``/docs``, its OAuth2 redirect page and the files they load. Raises ``InstallError``."""
    router = APIRouter()
    document = docs_contract(contract)
    title = str(contract["info"]["title"])
    for url, (name, media_type) in ASSETS.items():
        path = ASSETS_DIR / name
        if not path.is_file():
            raise InstallError(f"Swagger UI file {path} is missing: reinstall jwt-auth-kit and fastapi-offline")
        _asset_route(router, url, path, media_type)

    @router.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=DOCS_CONTRACT_URL,
            title=title,
            swagger_js_url="/docs/swagger-ui-bundle.js",
            swagger_css_url="/docs/swagger-ui.css",
            swagger_favicon_url="/docs/favicon.png",
            oauth2_redirect_url=REDIRECT_URL,
        )

    @router.get(DOCS_CONTRACT_URL, include_in_schema=False)
    async def contract_for_docs() -> dict[str, Any]:
        return document

    @router.get(REDIRECT_URL, include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    return router
