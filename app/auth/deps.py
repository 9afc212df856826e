"""FastAPI dependencies: the database session and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.auth.models import Role, TokenKind
from app.auth.service import Principal, require_role, resolve_token
from app.auth.tokens import csrf_matches
from app.config import get_settings
from app.db import request_session
from app.errors import Forbidden, Unauthorized

SESSION_COOKIE = "tandem_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# scope="function": commit before the response is sent, so a client never sees a write
# acknowledged that is not yet durable (or that later fails to commit).
DbSession = Annotated[Session, Depends(request_session, scope="function")]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
    return token.strip()


def current_principal(request: Request, session: DbSession) -> Principal:
    token = _bearer(request)
    if token is not None:
        principal = resolve_token(session, token, TokenKind.api)
        if principal is None:
            raise Unauthorized("The bearer token is invalid, expired or revoked.")
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        principal = resolve_token(session, cookie, TokenKind.session)
        if principal is None:
            raise Unauthorized("Your session has expired; log in again.")
        if request.method not in SAFE_METHODS:
            presented = request.headers.get(CSRF_HEADER) or ""
            if not csrf_matches(get_settings().resolved_secret_key(), cookie, presented):
                raise Forbidden(f"Missing or wrong {CSRF_HEADER} header for this session.")
        return principal
    raise Unauthorized("Authentication required: send 'Authorization: Bearer <token>'.")


CurrentUser = Annotated[Principal, Depends(current_principal)]


def _researcher(principal: CurrentUser) -> Principal:
    require_role(principal, Role.researcher)
    return principal


def _admin(principal: CurrentUser) -> Principal:
    require_role(principal, Role.admin)
    return principal


Researcher = Annotated[Principal, Depends(_researcher)]
Admin = Annotated[Principal, Depends(_admin)]
