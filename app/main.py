"""create_app(): middleware, routers, error mapping, lifespan — nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from app import __version__
from app.assignments.api import router as assignments_router
from app.assignments.pages import data_router as annotate_data_router
from app.assignments.pages import router as annotate_pages
from app.auth.api import router as auth_router
from app.auth.pages import router as auth_pages
from app.auth.user_pages import router as user_pages
from app.bodylimit import BodySizeLimit
from app.config import get_settings
from app.exports.api import router as exports_router
from app.exports.pages import router as exports_pages
from app.generation.api import router as generation_router
from app.health.api import router as health_router
from app.health.metrics import MetricsMiddleware
from app.http_errors import UnexpectedErrors, install_error_handlers
from app.items.api import router as items_router
from app.items.pages import router as items_pages
from app.jobs.api import router as jobs_router
from app.jobs.pages import router as jobs_pages
from app.judges.api import router as judges_router
from app.judges.pages import router as judges_pages
from app.loops.api import router as loops_router
from app.loops.demo_pages import router as demo_loop_pages
from app.loops.pages import router as loops_pages
from app.openapi import install_openapi
from app.projects.api import router as projects_router
from app.projects.pages import router as projects_pages
from app.prompts.api import router as prompt_sets_router
from app.prompts.pages import router as prompt_sets_pages
from app.prompts.readers import MAX_FILE_BYTES
from app.quality.api import router as quality_router
from app.quality.pages import router as quality_pages
from app.registry.api import items_router as item_lineage_router
from app.registry.api import router as models_router
from app.registry.pages import router as models_pages
from app.routing.api import router as routing_router
from app.routing.pages import router as routing_pages
from app.strictbody import StrictBodies
from app.training.runs.api import router as training_runs_router
from app.training.runs.pages import router as training_pages
from app.web.docs import install_docs
from app.web.setup import install_web

JSON_BODY_LIMIT = 4 * 1024 * 1024
PROMPT_SET_BODY_LIMIT = MAX_FILE_BYTES + 64 * 1024  # the file and the form around it


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    settings.resolved_secret_key()  # refuse to start with a known or missing key
    anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
    yield


def create_app() -> FastAPI:
    settings = get_settings()
    # /docs is served by app.web.docs from the installed package (works offline, under the CSP).
    app = FastAPI(
        title="Tandem", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)

    for router in (
        auth_router,
        projects_router,
        items_router,
        assignments_router,
        jobs_router,
        exports_router,
        training_runs_router,
        generation_router,
        loops_router,
        prompt_sets_router,
        models_router,
        item_lineage_router,
        judges_router,
        quality_router,
        judges_pages,
        routing_router,
        health_router,
        auth_pages,
        user_pages,
        projects_pages,
        quality_pages,
        annotate_pages,
        annotate_data_router,
        training_pages,
        loops_pages,
        models_pages,
        exports_pages,
        items_pages,
        jobs_pages,
        routing_pages,
        demo_loop_pages,
        prompt_sets_pages,
    ):
        app.include_router(router)

    upload_limit = settings.max_upload_bytes

    def is_upload(path: str) -> bool:
        return path.endswith("/items")

    def limit_for(path: str) -> int:
        if path.endswith("/prompt-sets"):
            # A prompt file (the route itself holds a JSON body to JSON_BODY_LIMIT).
            return PROMPT_SET_BODY_LIMIT
        return upload_limit if is_upload(path) else JSON_BODY_LIMIT

    # Innermost first: an unexpected error is answered inside every other middleware.
    app.add_middleware(UnexpectedErrors)
    app.add_middleware(StrictBodies, streamed=is_upload)
    app.add_middleware(BodySizeLimit, limit_for=limit_for)
    app.add_middleware(MetricsMiddleware)
    install_web(app)  # pages: /static, security headers and CSP nonces (outermost)
    return app


app = create_app()
