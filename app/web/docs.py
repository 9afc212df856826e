"""`/docs`: Swagger UI served from the installed `swagger-ui-bundle` package, so the API
documentation works offline and under the same strict CSP as every page (nonced scripts, no
CDN). FastAPI's own /docs and /redoc, which load their assets from a CDN with inline scripts,
are turned off in create_app().
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from app.web.assets import AssetStore
from app.web.templating import render

ASSETS_PREFIX = "/docs/assets/"
# Only what the page loads; the package's index.html and source maps are not served.
DOCS_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js"})


@lru_cache
def docs_assets() -> AssetStore:
    import swagger_ui_bundle  # a folder of static files; imported on the first /docs only

    return AssetStore(Path(swagger_ui_bundle.swagger_ui_path), prefix=ASSETS_PREFIX)


async def docs_page(request: Request) -> Response:
    store = docs_assets()
    return render(
        request,
        "docs.html",
        {"css_url": store.url("swagger-ui.css"), "js_url": store.url("swagger-ui-bundle.js")},
    )


async def docs_asset(request: Request) -> Response:
    store = docs_assets()
    name: str = request.path_params["name"]
    found = store.resolve(name)
    if found is None or found[0].name not in DOCS_FILES:
        return PlainTextResponse("Not Found", status_code=404)
    return store.response(request, name)


def install_docs(app: FastAPI) -> None:
    app.add_route("/docs", docs_page, methods=["GET", "HEAD"], name="docs")
    app.add_route(ASSETS_PREFIX + "{name}", docs_asset, methods=["GET", "HEAD"], name="docs_asset")
