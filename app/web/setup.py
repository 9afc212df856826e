"""Wire the page plumbing into the app: security headers with CSP nonces, gzip, and /static."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from app.web.compression import Compression
from app.web.security import SecurityHeaders
from app.web.templating import assets


async def static_file(request: Request) -> Response:
    return assets.response(request, request.path_params["path"])


def install_web(app: FastAPI) -> None:
    app.add_route("/static/{path:path}", static_file, methods=["GET", "HEAD"], name="static")
    app.add_middleware(Compression)
    app.add_middleware(SecurityHeaders)
