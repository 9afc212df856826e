"""create_app(): middleware, routers, error mapping, lifespan — nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app import __version__
from app.assignments.api import router as assignments_router
from app.assignments.pages import data_router as annotate_data_router
from app.assignments.pages import router as annotate_pages
from app.auth.api import router as auth_router
from app.auth.pages import router as auth_pages
from app.bodylimit import BodySizeLimit
from app.config import get_settings
from app.errors import DomainError, RateLimited
from app.exports.api import router as exports_router
from app.health.api import router as health_router
from app.health.metrics import MetricsMiddleware
from app.items.api import router as items_router
from app.jobs.api import router as jobs_router
from app.projects.api import router as projects_router
from app.projects.pages import router as projects_pages
from app.web.setup import install_web

JSON_BODY_LIMIT = 4 * 1024 * 1024


def _describe_validation(exc: RequestValidationError) -> tuple[int, str]:
    errors = list(exc.errors())
    first: dict[str, Any] = dict(errors[0]) if errors else {"loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        ctx = first.get("ctx") or {}
        reason = ctx.get("error", "malformed JSON") if isinstance(ctx, dict) else "malformed JSON"
        return 400, f"Request body is not valid JSON: {reason}."
    where = ".".join(str(p) for p in first.get("loc", ()))
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return 422, f"{where}: {first.get('msg')}{more}"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    settings.resolved_secret_key()  # refuse to start with a known or missing key
    anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
    yield


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPI(title="Tandem", version=__version__, lifespan=lifespan)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        body: dict[str, Any] = {"detail": exc.message, **exc.extra}
        if exc.status_code == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, sentence = _describe_validation(exc)
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"detail": sentence, "errors": errors}, status_code=status)

    for router in (
        auth_router,
        projects_router,
        items_router,
        assignments_router,
        jobs_router,
        exports_router,
        health_router,
        auth_pages,
        projects_pages,
        annotate_pages,
        annotate_data_router,
    ):
        app.include_router(router)

    upload_limit = settings.max_upload_bytes

    def limit_for(path: str) -> int:
        return upload_limit if path.endswith("/items") else JSON_BODY_LIMIT

    app.add_middleware(BodySizeLimit, limit_for=limit_for)
    app.add_middleware(MetricsMiddleware)
    install_web(app)  # pages: /static, security headers and CSP nonces (outermost)
    return app


app = create_app()
