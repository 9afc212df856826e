"""Wire the page plumbing into the app: security headers with CSP nonces, and /static."""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.web.security import SecurityHeaders
from app.web.templating import STATIC_DIR


class VersionedStatic(StaticFiles):
    """Static files; a URL with `?v=<hash>` (see static_url) is cacheable for a year."""

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
        status_code: int = 200,
    ) -> Response:  # fmt: skip
        response = super().file_response(full_path, stat_result, scope, status_code)
        query: Any = scope.get("query_string", b"")
        if query.startswith(b"v="):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers["Cache-Control"] = "no-cache"
        return response


def install_web(app: FastAPI) -> None:
    app.mount("/static", VersionedStatic(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeaders)
