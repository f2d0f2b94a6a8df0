"""`/docs` (Swagger UI) and `/redoc`, served with their assets by Tenantry itself: they work on
an air-gapped deployment, and their pages carry a CSP that loads nothing from elsewhere.

The assets come from the `fastapi-offline` package (Swagger UI and ReDoc, MIT); the pages
and Swagger UI's start-up script are ours, so no inline script needs a CSP exception.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from starlette.staticfiles import StaticFiles

HERE = Path(__file__).parent
VENDORED = Path(fastapi_offline.__file__).parent / "static"
ASSETS = "/docs/assets"
# Swagger UI and ReDoc style their widgets inline and draw icons from data: URLs; ReDoc's
# search runs in a blob: worker. Nothing may come from another origin.
CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; font-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
HEADERS = {"Content-Security-Policy": CSP, "Referrer-Policy": "no-referrer"}

# Read once: the pages never change while the process runs.
SWAGGER_PAGE = (HERE / "swagger.html").read_text()
REDOC_PAGE = (HERE / "redoc.html").read_text()

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return HTMLResponse(SWAGGER_PAGE, headers=HEADERS)


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return HTMLResponse(REDOC_PAGE, headers=HEADERS)


@router.get(f"{ASSETS}/swagger-init.js")
async def swagger_init() -> FileResponse:
    return FileResponse(HERE / "swagger-init.js", media_type="text/javascript")


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=VENDORED), name="docs-assets")
