"""HTML routes: the login form and logout, on the same service functions as the JSON API."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from app.auth import service
from app.auth.api import set_session_cookie
from app.auth.deps import SESSION_COOKIE, DbSession
from app.auth.models import TokenKind
from app.auth.ratelimit import check_login_allowed
from app.auth.schemas import Credentials
from app.config import get_settings
from app.errors import RateLimited, Unauthorized
from app.web.deps import FormUser, PageRoute, safe_next
from app.web.flash import read_flash, redirect_with_error
from app.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

# Double-submit token for the login form itself (there is no session yet to bind one to), so
# another site cannot log a browser into an account of its choosing.
LOGIN_CSRF_COOKIE = "tandem_login_csrf"


def _login_form(request: Request, next_url: str, *, email: str = "", error: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {"next": next_url, "email": email, "error": error, "login_csrf": token},
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=24 * 3600,
        httponly=True,
        samesite="strict",
        secure=get_settings().cookie_secure,
        path="/login",
    )
    return response


@router.get("/login")
def login_page(request: Request, session: DbSession, next: str = "/") -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and service.resolve_token(session, cookie, TokenKind.session) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    errors, values = read_flash(request)
    email = values.get("email")
    return _login_form(
        request,
        safe_next(next),
        email=email if isinstance(email, str) else "",
        error=errors.get("login", ""),
    )


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/login")
def login(
    request: Request,
    session: DbSession,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    login_csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    next_url = safe_next(next)
    back = f"/login?next={quote(next_url)}"
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, login_csrf):
        return redirect_with_error(
            back, {"login": "The login form expired; please try again."}, {"email": email}
        )
    try:
        creds = Credentials(email=email, password=password)
    except ValidationError:
        return redirect_with_error(
            back, {"login": "Enter your email address and password."}, {"email": email}
        )
    try:
        check_login_allowed(_client_ip(request), creds.email)
        user = service.authenticate(session, creds.email, creds.password)
    except (Unauthorized, RateLimited) as exc:
        return redirect_with_error(back, {"login": exc.message}, {"email": email})
    token, _ = service.issue_token(
        session, user, TokenKind.session, get_settings().session_ttl_seconds
    )
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(response, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(principal: FormUser, session: DbSession) -> Response:
    service.revoke_token(session, principal.token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
