"""JSON routes: tokens, browser sessions, the caller, and user management."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.auth import service
from app.auth.deps import SESSION_COOKIE, Admin, CurrentUser, DbSession
from app.auth.models import Role, TokenKind
from app.auth.ratelimit import check_login_allowed
from app.auth.schemas import Credentials, SessionOut, TokenOut, UserCreate, UserOut
from app.auth.tokens import csrf_token
from app.config import get_settings

router = APIRouter(prefix="/api/v1", tags=["auth"])


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/auth/token", response_model=TokenOut)
def create_token(body: Credentials, request: Request, session: DbSession) -> TokenOut:
    check_login_allowed(_client_ip(request), body.email)
    user = service.authenticate(session, body.email, body.password)
    token, expires_at = service.issue_token(
        session, user, TokenKind.api, get_settings().api_token_ttl_seconds
    )
    return TokenOut(access_token=token, expires_at=expires_at)


@router.delete("/auth/token", status_code=status.HTTP_204_NO_CONTENT)
def revoke_current_token(principal: CurrentUser, session: DbSession) -> None:
    service.revoke_token(session, principal.token)


@router.post("/auth/session", response_model=SessionOut)
def create_browser_session(
    body: Credentials, request: Request, response: Response, session: DbSession
) -> SessionOut:
    """Log a browser in: an HttpOnly session cookie, plus the CSRF token its scripts must echo."""
    check_login_allowed(_client_ip(request), body.email)
    user = service.authenticate(session, body.email, body.password)
    settings = get_settings()
    token, _ = service.issue_token(session, user, TokenKind.session, settings.session_ttl_seconds)
    set_session_cookie(response, token)
    return SessionOut(
        csrf_token=csrf_token(settings.resolved_secret_key(), token),
        user=UserOut.model_validate(user),
    )


@router.delete("/auth/session", status_code=status.HTTP_204_NO_CONTENT)
def end_browser_session(principal: CurrentUser, response: Response, session: DbSession) -> None:
    service.revoke_token(session, principal.token)
    response.delete_cookie(SESSION_COOKIE, path="/")


def set_session_cookie(response: Response, token: str) -> None:
    settings = get_settings()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )


@router.get("/me", response_model=UserOut)
def me(principal: CurrentUser) -> UserOut:
    return UserOut(id=principal.id, email=principal.email, role=principal.role)


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, admin: Admin, session: DbSession) -> UserOut:
    user = service.create_user(session, body.email, body.password, Role(body.role), admin.id)
    return UserOut.model_validate(user)
