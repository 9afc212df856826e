"""Page dependencies: the logged-in browser user (else a redirect to /login), form CSRF checks."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from app.auth.deps import SESSION_COOKIE, DbSession, release_connection
from app.auth.models import TokenKind
from app.auth.service import Principal, resolve_token
from app.auth.tokens import csrf_matches
from app.config import get_settings
from app.db import session_scope
from app.errors import CsrfFailed, DomainError, describe_errors, sentence
from app.http_errors import not_found_message
from app.validation import json_safe
from app.web.templating import render

CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    """No valid session cookie: the page answers with a redirect to the login form."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def safe_next(url: str | None) -> str:
    """Only same-site paths may be a post-login destination (no open redirect)."""
    if not url or not url.startswith("/") or url.startswith(("//", "/\\")):
        return "/"
    return url


def page_principal(request: Request, session: DbSession) -> Principal:
    cookie = request.cookies.get(SESSION_COOKIE)
    principal = resolve_token(session, cookie, TokenKind.session) if cookie else None
    if principal is None:
        # After logging in, come back to the page; a form post is not repeated.
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target if request.method == "GET" else "/")
    request.state.principal = principal
    release_connection(session)
    return principal


PageUser = Annotated[Principal, Depends(page_principal)]


def viewer(request: Request) -> Principal | None:
    """The logged-in browser user, if any, for pages that do not require one (error pages).
    Never raises: an error page must render even when the database is away."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        with session_scope() as session:
            return resolve_token(session, cookie, TokenKind.session)
    except Exception:
        return None


async def form_principal(request: Request, principal: PageUser) -> Principal:
    """A logged-in user posting an HTML form that carries this session's CSRF token."""
    form = await request.form()
    presented = form.get(CSRF_FIELD)
    if not isinstance(presented, str) or not csrf_matches(
        get_settings().resolved_secret_key(), principal.token, presented
    ):
        raise CsrfFailed("This form has expired or did not come from Tandem; reload the page.")
    return principal


FormUser = Annotated[Principal, Depends(form_principal)]


def _describe(exc: RequestValidationError) -> str:
    return sentence(describe_errors(exc.errors()), skip=("body", "query", "path"))


def _bad_path(exc: RequestValidationError) -> bool:
    """A path that matched a route's shape but not its types (/projects/abc): no such page."""
    return any(e.get("loc", ("",))[0] == "path" for e in exc.errors())


def wants_page(request: Request) -> bool:
    """A browser navigating (not a script, not the API): answer errors with a page."""
    path = request.url.path
    if path.startswith(("/api/", "/static/")) or path == "/openapi.json":
        return False
    return "text/html" in request.headers.get("accept", "")


class PageRoute(APIRoute):
    """A route answering in HTML: domain errors become an error page, no session a redirect."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                return RedirectResponse(f"/login?next={quote(safe_next(exc.next_url))}", 303)
            except DomainError as exc:
                return error_page(request, exc.status_code, exc.message)
            except RequestValidationError as exc:
                if _bad_path(exc):
                    return error_page(request, 404, not_found_message(request.url.path))
                return error_page(request, 422, _describe(exc))

        return page_handler


def error_page(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """The styled error page (the API answers the same errors in JSON)."""
    principal: Any = getattr(request.state, "principal", None)
    response = render(
        request,
        "error.html",
        {"status": status, "message": json_safe(message)},  # it may quote the bad input
        principal=principal,
        status_code=status,
    )
    response.headers.update(headers or {})
    return response
