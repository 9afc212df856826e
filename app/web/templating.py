"""The Jinja2 environment of the pages (autoescape everywhere) and content-hashed static URLs."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from app import __version__
from app.auth.service import Principal
from app.auth.tokens import csrf_token
from app.config import get_settings
from app.resources import resource_dir
from app.web.assets import AssetStore
from app.web.flash import FLASH_COOKIE

TEMPLATES_DIR = resource_dir("templates")
STATIC_DIR = resource_dir("static")
assets = AssetStore(STATIC_DIR)


def static_url(name: str) -> str:
    """`/static/<stem>.<content hash>.<ext>`: served with a year-long cache, changed by any edit."""
    return assets.url(name)


@lru_cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every template, whatever its extension
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_url"] = static_url
    # ES modules: {{ import_map() }} in a nonced <script type="importmap">, and
    # module_preloads(entry, ...) for <link rel="modulepreload">.
    env.globals["import_map"] = assets.import_map
    env.globals["module_preloads"] = assets.module_preloads
    env.globals["version"] = __version__
    return env


def csp_nonce(request: Request) -> str:
    nonce: str = request.scope.get("state", {}).get("csp_nonce", "")
    return nonce


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    principal: Principal | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page with the CSP nonce, the caller and (when logged in) the CSRF token."""
    ctx: dict[str, Any] = {
        "request": request,
        "nonce": csp_nonce(request),
        "user": principal,
        "csrf": (
            csrf_token(get_settings().resolved_secret_key(), principal.token)
            if principal is not None and principal.via_cookie
            else ""
        ),
        **(context or {}),
    }
    html = environment().get_template(template).render(ctx)
    response = HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
    if FLASH_COOKIE in request.cookies:  # shown once: this page displayed it
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response
