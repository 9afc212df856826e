"""JSON routes: tokens, browser sessions, the caller, and user management."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from app.auth import invitations, service, users
from app.auth.deps import SESSION_COOKIE, Admin, CurrentUser, DbSession, Researcher
from app.auth.models import Invitation, Role, TokenKind
from app.auth.ratelimit import check_login_allowed
from app.auth.schemas import (
    Credentials,
    InvitationAccept,
    InvitationAccepted,
    InvitationCreate,
    InvitationOut,
    InvitationPage,
    PasswordChange,
    SessionOut,
    TokenOut,
    UserAdminOut,
    UserCreate,
    UserOut,
    UserPage,
    UserPatch,
)
from app.auth.tokens import csrf_token
from app.config import get_settings
from app.pagination import Cursor, Keyset, Limit
from app.validation import BIGINT_MAX, STORABLE, PathId

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


# Search text: at most 200 characters, nothing PostgreSQL cannot store.
Search = Annotated[
    str, Query(max_length=200, description="Part of the email, case-insensitive."), STORABLE
]


@router.get("/users", response_model=UserPage)
def list_users(
    admin: Admin,
    session: DbSession,
    q: Search = "",
    role: Role | None = None,
    active: bool | None = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> UserPage:
    """Users newest first; `q` matches part of the email."""
    page = Keyset.parse(limit, cursor)
    rows = users.list_users(session, admin, page, query=q, role=role, active=active)
    return UserPage(
        items=[UserAdminOut.model_validate(u) for u in rows[: page.limit]],
        next_cursor=page.next_cursor([u.id for u in rows]),
    )


@router.get("/users/{user_id}", response_model=UserAdminOut)
def get_user(user_id: PathId, admin: Admin, session: DbSession) -> UserAdminOut:
    return UserAdminOut.model_validate(users.get_user(session, admin, user_id))


@router.patch("/users/{user_id}", response_model=UserAdminOut)
def patch_user(user_id: PathId, body: UserPatch, admin: Admin, session: DbSession) -> UserAdminOut:
    change = users.UserChange(role=body.role, is_active=body.is_active, password=body.password)
    return UserAdminOut.model_validate(users.update_user(session, admin, user_id, change))


@router.put("/me/password", status_code=status.HTTP_204_NO_CONTENT)
def change_my_password(body: PasswordChange, principal: CurrentUser, session: DbSession) -> None:
    """Ends every other session and token of yours; the one used here keeps working."""
    users.change_own_password(session, principal, body.current_password, body.new_password)


def invitation_out(invitation: Invitation) -> InvitationOut:
    state = invitations.status_of(invitation)
    return InvitationOut(
        id=invitation.id,
        email=invitation.email,
        project_id=invitation.project_id,
        role=invitation.role,
        status=state,
        expires_at=invitation.expires_at,
        created_at=invitation.created_at,
        url=invitations.link_of(invitation) if state == "pending" else None,
    )


@router.post("/invitations", response_model=InvitationOut, status_code=status.HTTP_201_CREATED)
def create_invitation(
    body: InvitationCreate, principal: Researcher, session: DbSession
) -> InvitationOut:
    invitation = invitations.create_invitation(
        session, principal, body.project_id, body.email, body.role, body.expires_in_days
    )
    session.refresh(invitation)
    return invitation_out(invitation)


@router.get("/invitations", response_model=InvitationPage)
def list_invitations(
    principal: Researcher,
    session: DbSession,
    project_id: Annotated[
        int | None, Query(ge=1, le=BIGINT_MAX, description="Only this project's.")
    ] = None,
    pending: bool = False,
    limit: Limit = None,
    cursor: Cursor = None,
) -> InvitationPage:
    page = Keyset.parse(limit, cursor)
    rows = invitations.list_invitations(session, principal, project_id, page, pending_only=pending)
    return InvitationPage(
        items=[invitation_out(i) for i in rows[: page.limit]],
        next_cursor=page.next_cursor([i.id for i in rows]),
    )


@router.delete("/invitations/{invitation_id}", response_model=InvitationOut)
def revoke_invitation(
    invitation_id: PathId, principal: Researcher, session: DbSession
) -> InvitationOut:
    return invitation_out(invitations.revoke_invitation(session, principal, invitation_id))


@router.post(
    "/auth/accept-invitation",
    response_model=InvitationAccepted,
    status_code=status.HTTP_201_CREATED,
)
def accept_invitation(body: InvitationAccept, session: DbSession) -> InvitationAccepted:
    """No credentials: the link's token is the proof. Creates the account, once."""
    user, project_id = invitations.accept(session, body.token, body.password)
    return InvitationAccepted(user=UserOut.model_validate(user), project_id=project_id)
