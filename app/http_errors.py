"""Every error answer in one place: `{"detail": sentence, "error": code, ...}` as JSON.

Domain errors carry their own status and code; request validation is `validation_error` (422)
or `malformed_json` (400); Starlette's HTTP errors (unknown route, wrong method) get a code by
status; a lost database or broker connection is `service_unavailable` (503 with Retry-After);
anything else is `internal_error` (500), logged with its traceback, and the connection stays
open. Error bodies never crash while being built: text that echoes bad input is made safe.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import kombu.exceptions
import psycopg
import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import exc as sa
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import (
    DomainError,
    RateLimited,
    ServiceUnavailable,
    describe_errors,
    sentence,
)
from app.validation import json_safe

log = logging.getLogger(__name__)

# The request part of a location ("query.page"): the pages name the field alone.
SKIP = ("body", "query", "path")


def not_found_message(path: str) -> str:
    return f"There is no page at {path}. Check the address, or start again from your projects."


RETRY_AFTER_SECONDS = 1
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}
# Bodies refused before any route parses them (here and in app/strictbody.py).
MALFORMED_JSON = "malformed_json"
MALFORMED_FORM = "malformed_form"
BODY_CODES = (MALFORMED_JSON, MALFORMED_FORM)
# Connection-level failures: the request may succeed once the server is back.
DATABASE_DOWN = (sa.OperationalError, sa.InterfaceError, sa.TimeoutError, psycopg.OperationalError)
BROKER_DOWN = (redis.ConnectionError, redis.TimeoutError, kombu.exceptions.OperationalError)


class SafeJSONResponse(JSONResponse):
    """JSON that cannot fail to encode (the body may quote the bad input it rejects)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(
            json_safe(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")


def error_response(
    status: int,
    detail: str,
    code: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    return SafeJSONResponse({"detail": detail, "error": code, **extra}, status, headers)


def describe_request_errors(exc: RequestValidationError) -> tuple[int, str, str, list[Any]]:
    """(status, sentence, code, errors) for a request that failed FastAPI's validation."""
    raw = list(exc.errors())
    if raw and raw[0].get("type") == "json_invalid":
        ctx = raw[0].get("ctx") or {}
        reason = ctx.get("error", "malformed JSON") if isinstance(ctx, dict) else "malformed JSON"
        return (
            400,
            f"Request body is not valid JSON: {json_safe(str(reason))}.",
            MALFORMED_JSON,
            [],
        )
    errors = describe_errors(raw)
    return 422, sentence(errors), "validation_error", errors


async def _page_for(
    request: Request, status: int, detail: str, headers: Any = None
) -> Response | None:
    """A browser navigating gets the styled page; the API and scripts keep JSON."""
    from app.web.deps import error_page, viewer, wants_page  # pages import this module

    if not wants_page(request):
        return None
    if getattr(request.state, "principal", None) is None:
        # The top bar of a logged-in user (no route ran to find them).
        request.state.principal = await run_in_threadpool(viewer, request)
    return error_page(request, status, detail, dict(headers or {}))


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    if exc.status_code in (404, 405, 422) and (
        page := await _page_for(request, exc.status_code, exc.message)
    ):
        return page
    headers: dict[str, str] | None = None
    if isinstance(exc, RateLimited | ServiceUnavailable):
        headers = {"Retry-After": str(exc.retry_after)}
    elif exc.status_code == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return error_response(exc.status_code, exc.message, exc.code, headers, **exc.extra)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    status, detail, code, errors = describe_request_errors(exc)
    if status == 422 and (page := await _page_for(request, status, sentence(errors, skip=SKIP))):
        return page
    extra: dict[str, Any] = {"errors": errors} if errors else {}
    return error_response(status, detail, code, None, **extra)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    fallback = "bad_request" if exc.status_code < 500 else "internal_error"
    code = HTTP_CODES.get(exc.status_code, fallback)
    detail = str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        if page := await _page_for(request, 404, not_found_message(request.url.path)):
            return page
        detail = f"Nothing is at {request.method} {request.url.path}."
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}."
        # Starlette names only the first route that matched the path; list them all.
        allowed = _methods_for(request)
        headers = {"Allow": ", ".join(allowed)} if allowed else {}
        if request.method == "GET" and allowed == ["POST"]:
            # A form's address opened directly (or reloaded): say so in the user's terms.
            message = (
                f"{request.url.path} only receives forms, so there is nothing to show here."
                " Go back to the page with the form."
            )
        else:
            message = f"This page cannot be opened with {request.method}."
        if page := await _page_for(request, 405, message, headers):
            return page
        if allowed:
            return error_response(405, detail, code, headers)
    elif exc.status_code == 400 and "parsing the body" in detail:
        detail, code = "Request body could not be read as JSON.", MALFORMED_JSON
    return error_response(exc.status_code, detail, code, dict(exc.headers or {}))


def _methods_for(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, BaseRoute) and route.matches(request.scope)[0] is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _unavailable(what: str) -> Response:
    return error_response(
        503,
        f"The {what} is unreachable right now; try again in a moment.",
        ServiceUnavailable.code,
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _database_down(request: Request, exc: Exception) -> Response:
    # The pool has already invalidated the dead connection (SQLAlchemy does on disconnect
    # errors), so the retry gets a fresh one.
    log.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else exc)
    return _unavailable("database")


async def _broker_down(request: Request, exc: Exception) -> Response:
    log.warning("broker unavailable: %s", exc)
    return _unavailable("broker")


class UnexpectedErrors:
    """Answer an unhandled exception with a JSON 500 and keep the connection open.

    Starlette's own last-resort handler re-raises after answering, which makes uvicorn close
    a keep-alive connection; here the traceback is logged instead. Once a response has
    started (a streamed export) nothing can be sent, and the exception goes on.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            response = error_response(
                500, "Something went wrong on our side; it has been logged.", "internal_error"
            )
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Register every mapping; add UnexpectedErrors as a middleware inside the others."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    for db_error in DATABASE_DOWN:
        app.add_exception_handler(db_error, _database_down)
    for broker_error in BROKER_DOWN:
        app.add_exception_handler(broker_error, _broker_down)
