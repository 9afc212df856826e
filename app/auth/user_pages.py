"""HTML routes for accounts: the admins' users pages, "change my password", and the page where
an invitee accepts an invitation. Failed forms redirect back with their error (app.web.flash).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from app.auth import invitations, service, users
from app.auth.api import set_session_cookie
from app.auth.deps import DbSession
from app.auth.models import Role, TokenKind
from app.auth.schemas import Email, Password
from app.auth.service import require_role
from app.config import get_settings
from app.errors import CsrfFailed, DomainError, Invalid
from app.pagination import Keyset
from app.validation import STORABLE, PathId
from app.web.deps import FormUser, PageRoute, PageUser
from app.web.flash import read_flash, redirect_with_error
from app.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_SIZE = 50
_EMAIL = TypeAdapter(Email)
_PASSWORD = TypeAdapter(Password)
Search = Annotated[str, Query(max_length=200), STORABLE]
PageCursor = Annotated[str | None, Query(pattern=r"^[0-9]{1,19}$")]
ROLE_NAMES = {r.value: r.value for r in Role}

USER_NOTICES = {
    "created": "User created.",
    "saved": "Saved.",
    "password": "Password set. Their sessions have ended; tell them the new password.",
    "changed": "Your password is changed. Your other sessions have ended.",
}


def _field_error(err: ValidationError, names: dict[str, str]) -> str:
    """A pydantic error in the words of the form ("Password: at least 8 characters")."""
    first = err.errors()[0]
    field = next((str(p) for p in first["loc"] if isinstance(p, str)), "")
    label = names.get(field, field.replace("_", " ").capitalize())
    msg = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "string_too_short" and "min_length" in (first.get("ctx") or {}):
        msg = f"must have at least {first['ctx']['min_length']} characters"
    return f"{label}: {msg}." if label else f"{msg}."


def _form_text(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.get("/users")
def users_page(
    request: Request,
    principal: PageUser,
    session: DbSession,
    q: Search = "",
    role: Annotated[Literal["", "annotator", "researcher", "admin"], Query()] = "",
    status: Annotated[Literal["", "active", "disabled"], Query()] = "",
    cursor: PageCursor = None,
) -> Response:
    """The search form sends "" for "any" role or status."""
    require_role(principal, Role.admin)
    page = Keyset.parse(PAGE_SIZE, cursor)
    active = None if not status else status == "active"
    rows = users.list_users(
        session, principal, page, query=q, role=Role(role) if role else None, active=active
    )
    next_cursor = page.next_cursor([u.id for u in rows])
    filters = {"q": q, "role": role, "status": status}
    errors, values = read_flash(request)
    return render(
        request,
        "users.html",
        {
            "rows": rows[:PAGE_SIZE],
            "q": q,
            "filters": filters,
            "first_page": cursor is None,
            "first_url": f"/users?{urlencode(filters)}",
            "next_url": f"/users?{urlencode({**filters, 'cursor': next_cursor})}"
            if next_cursor
            else "",
            "roles": list(Role),
            "errors": errors,
            "values": values,
        },
        principal=principal,
    )


@router.post("/users")
async def create_user(request: Request, principal: FormUser, session: DbSession) -> Response:
    require_role(principal, Role.admin)
    form = await request.form()
    values = {"email": _form_text(form, "email"), "role": _form_text(form, "role")}
    try:
        email = _EMAIL.validate_python(values["email"])
        password = _PASSWORD.validate_python(_form_text(form, "password"))
        if values["role"] not in ROLE_NAMES:
            raise Invalid("Choose a role: annotator, researcher or admin.")
        role = Role(values["role"])
        user = await run_in_threadpool(
            service.create_user, session, email, password, role, principal.id
        )
    except ValidationError as err:
        return redirect_with_error("/users", {"create": _field_error(err, {})}, values)
    except DomainError as exc:
        session.rollback()
        return redirect_with_error("/users", {"create": exc.message}, values)
    return RedirectResponse(f"/users/{user.id}?notice=created", status_code=303)


@router.get("/users/{user_id}")
def user_page(
    user_id: PathId, request: Request, principal: PageUser, session: DbSession
) -> Response:
    user = users.get_user(session, principal, user_id)
    errors, _ = read_flash(request)
    return render(
        request,
        "user.html",
        {
            "target": user,
            "roles": list(Role),
            "errors": errors,
            "is_self": user.id == principal.id,
            "notice": USER_NOTICES.get(request.query_params.get("notice", ""), ""),
        },
        principal=principal,
    )


@router.post("/users/{user_id}")
async def update_user(
    user_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    """The role and whether the account works."""
    require_role(principal, Role.admin)
    form = await request.form()
    role, state = _form_text(form, "role"), _form_text(form, "status")
    back = f"/users/{user_id}"
    if role not in ROLE_NAMES or state not in ("active", "disabled"):
        return redirect_with_error(back, {"user": "Choose a role and whether the account works."})
    change = users.UserChange(role=Role(role), is_active=state == "active")
    try:
        await run_in_threadpool(users.update_user, session, principal, user_id, change)
    except DomainError as exc:
        session.rollback()
        if exc.status_code in (403, 404):
            raise
        return redirect_with_error(back, {"user": exc.message})
    return RedirectResponse(f"{back}?notice=saved", status_code=303)


@router.post("/users/{user_id}/password")
async def reset_password(
    user_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    require_role(principal, Role.admin)
    form = await request.form()
    back = f"/users/{user_id}"
    try:
        password = _PASSWORD.validate_python(_form_text(form, "password"))
    except ValidationError as err:
        return redirect_with_error(back, {"password": _field_error(err, {"": "New password"})})
    change = users.UserChange(password=password)
    await run_in_threadpool(users.update_user, session, principal, user_id, change)
    return RedirectResponse(f"{back}?notice=password", status_code=303)


@router.get("/account/password")
def password_page(request: Request, principal: PageUser) -> Response:
    errors, _ = read_flash(request)
    return render(
        request,
        "password.html",
        {
            "errors": errors,
            "notice": USER_NOTICES.get(request.query_params.get("notice", ""), ""),
        },
        principal=principal,
    )


@router.post("/account/password")
async def change_password(request: Request, principal: FormUser, session: DbSession) -> Response:
    form = await request.form()
    current, new = _form_text(form, "current_password"), _form_text(form, "new_password")
    back = "/account/password"
    if new != _form_text(form, "confirm_password"):
        return redirect_with_error(back, {"password": "The two new passwords differ."})
    try:
        new = _PASSWORD.validate_python(new)
        await run_in_threadpool(users.change_own_password, session, principal, current, new)
    except ValidationError as err:
        return redirect_with_error(back, {"password": _field_error(err, {"": "New password"})})
    except DomainError as exc:
        session.rollback()
        return redirect_with_error(back, {"password": exc.message})
    return RedirectResponse(f"{back}?notice=changed", status_code=303)


@router.get("/invite/{token}")
def invitation_page(
    token: Annotated[str, STORABLE], request: Request, session: DbSession
) -> Response:
    """Public: the link is the credential. Shows whom the invitation is for and asks for a
    password."""
    found = invitations.find_open(session, token)
    errors, _ = read_flash(request)
    return render(
        request,
        "invite.html",
        {
            "invitation": found.invitation,
            "project_name": found.project_name,
            "token": token,
            "errors": errors,
        },
    )


@router.post("/invite/{token}")
async def accept_invitation(
    token: Annotated[str, STORABLE],
    request: Request,
    session: DbSession,
    password: Annotated[str, Form()] = "",
    confirm_password: Annotated[str, Form()] = "",
) -> Response:
    back = f"/invite/{quote(token)}"
    # No session to bind a CSRF token to: refuse posts that browsers mark as coming from
    # another site, so no site can log a visitor into an account it was invited to.
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise CsrfFailed("This form did not come from Tandem; open the invitation link again.")
    if password != confirm_password:
        return redirect_with_error(back, {"password": "The two passwords differ."})
    try:
        checked = _PASSWORD.validate_python(password)
    except ValidationError as err:
        return redirect_with_error(back, {"password": _field_error(err, {"": "Password"})})
    try:
        user, project_id = await run_in_threadpool(invitations.accept, session, token, checked)
    except DomainError as exc:
        session.rollback()
        if exc.status_code == 404:
            raise
        return redirect_with_error(back, {"password": exc.message})
    # Logged in at once, and landed in the project.
    session_token, _ = await run_in_threadpool(
        service.issue_token, session, user, TokenKind.session, get_settings().session_ttl_seconds
    )
    response = RedirectResponse(f"/projects/{project_id}?notice=welcome", status_code=303)
    set_session_cookie(response, session_token)
    return response
