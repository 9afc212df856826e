"""FastAPI dependencies: the database session and the authenticated caller."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.auth.models import Role, TokenKind
from app.auth.service import Principal, require_role, resolve_token
from app.auth.tokens import csrf_matches
from app.config import get_settings
from app.db import request_session, retrying, session_scope
from app.errors import CsrfFailed, Unauthorized

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


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presented, read without touching the database."""

    token: str
    kind: TokenKind
    csrf_ok: bool  # bearer tokens need none; a cookie on a write needs a matching header


def request_credentials(request: Request) -> Credentials:
    token = _bearer(request)
    if token is not None:
        return Credentials(token, TokenKind.api, csrf_ok=True)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        csrf_ok = request.method in SAFE_METHODS or csrf_matches(
            get_settings().resolved_secret_key(), cookie, request.headers.get(CSRF_HEADER) or ""
        )
        return Credentials(cookie, TokenKind.session, csrf_ok)
    raise Unauthorized("Authentication required: send 'Authorization: Bearer <token>'.")


def principal_for(session: Session, creds: Credentials) -> Principal:
    """The user behind the credentials (one indexed query), or 401/403."""
    principal = resolve_token(session, creds.token, creds.kind)
    if principal is None:
        if creds.kind is TokenKind.api:
            raise Unauthorized("The bearer token is invalid, expired or revoked.")
        raise Unauthorized("Your session has expired; log in again.")
    if not creds.csrf_ok:
        raise CsrfFailed(f"Missing or wrong {CSRF_HEADER} header for this session.")
    return principal


T = TypeVar("T")


def as_caller(creds: Credentials, fn: Callable[[Session, Principal], T]) -> T:
    """Authenticate and run fn in one transaction on one worker thread (run it through
    run_in_threadpool from an async route).

    For the routes annotators call all day (next, submit, skip, draft, progress): one thread
    hop per request rather than one per dependency, and one transaction, committed before
    the response is sent. Under load each hop waits its turn for a thread.
    """
    with session_scope() as session:
        principal = principal_for(session, creds)
        return retrying(session, lambda: fn(session, principal))


def current_principal(request: Request, session: DbSession) -> Principal:
    principal = principal_for(session, request_credentials(request))
    release_connection(session)
    return principal


def release_connection(session: Session) -> None:
    """End the read a dependency did, handing its connection back to the pool.

    The route itself runs in another worker-thread hop: a request must not hold a pooled
    connection while it waits for a thread, or a burst of requests (200 clients) takes every
    connection and the threads that could finish them wait 30 s for one.
    """
    session.rollback()


CurrentUser = Annotated[Principal, Depends(current_principal)]


def _researcher(principal: CurrentUser) -> Principal:
    require_role(principal, Role.researcher)
    return principal


def _admin(principal: CurrentUser) -> Principal:
    require_role(principal, Role.admin)
    return principal


Researcher = Annotated[Principal, Depends(_researcher)]
Admin = Annotated[Principal, Depends(_admin)]
