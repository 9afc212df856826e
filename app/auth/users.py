"""User administration (list, search, role, disable, password reset) and "change my password".

Shared by the JSON API and the pages. Disabling a user or setting their password revokes
every token and session they hold, so a browser left logged in stops working at once (and
re-enabling an account does not bring old sessions back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audit.service import record
from app.auth import tokens
from app.auth.models import ApiToken, Role, User
from app.auth.passwords import hash_password, verify_password
from app.auth.service import Principal, require_role
from app.errors import Conflict, Invalid, NotFound
from app.pagination import Keyset, like_pattern


def list_users(
    session: Session,
    principal: Principal,
    page: Keyset,
    *,
    query: str = "",
    role: Role | None = None,
    active: bool | None = None,
) -> list[User]:
    """Users newest first (cursor: the last id of the previous page), up to limit+1 rows."""
    require_role(principal, Role.admin)
    stmt = select(User).order_by(User.id.desc()).limit(page.limit + 1)
    if query.strip():
        stmt = stmt.where(User.email.ilike(like_pattern(query.strip()), escape="\\"))
    if role is not None:
        stmt = stmt.where(User.role == role)
    if active is not None:
        stmt = stmt.where(User.is_active.is_(active))
    if page.after_id is not None:
        stmt = stmt.where(User.id < page.after_id)
    return list(session.scalars(stmt))


def get_user(session: Session, principal: Principal, user_id: int) -> User:
    require_role(principal, Role.admin)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} does not exist.")
    return user


def _revoke_all(session: Session, user_id: int, keep_token: str | None = None) -> None:
    stmt = update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    if keep_token is not None:
        stmt = stmt.where(ApiToken.token_hash != tokens.digest(keep_token))
    session.execute(stmt.values(revoked_at=datetime.now(UTC)))


@dataclass(frozen=True, slots=True)
class UserChange:
    """What an admin changes about a user; None leaves a field as it is."""

    role: Role | None = None
    is_active: bool | None = None
    password: str | None = None


def update_user(session: Session, principal: Principal, user_id: int, change: UserChange) -> User:
    require_role(principal, Role.admin)
    user = session.scalars(select(User).where(User.id == user_id).with_for_update()).one_or_none()
    if user is None:
        raise NotFound(f"User {user_id} does not exist.")
    if user.id == principal.id and (
        change.is_active is False or (change.role is not None and change.role is not Role.admin)
    ):
        # The last admin could otherwise lock everyone out; another admin can do it.
        raise Conflict("You cannot disable your own account or take away your own admin role.")
    details: dict[str, object] = {}
    if change.role is not None and change.role is not user.role:
        details["role"] = change.role.value
        user.role = change.role
    if change.is_active is not None and change.is_active != user.is_active:
        details["is_active"] = change.is_active
        user.is_active = change.is_active
        if not change.is_active:
            _revoke_all(session, user.id)
    if change.password is not None:
        details["password_reset"] = True
        user.password_hash = hash_password(change.password)
        _revoke_all(session, user.id)
    if details:
        record(session, principal.id, "user.update", "user", user.id, **details)
    session.flush()
    return user


def change_own_password(
    session: Session, principal: Principal, current_password: str, new_password: str
) -> None:
    """Check the current password, set the new one, and end every other session and token."""
    user = session.get_one(User, principal.id)
    if not verify_password(user.password_hash, current_password):
        raise Invalid("The current password is wrong.")
    if current_password == new_password:
        raise Invalid("The new password must differ from the current one.")
    user.password_hash = hash_password(new_password)
    _revoke_all(session, user.id, keep_token=principal.token)
    record(session, principal.id, "user.password_change", "user", user.id)
    session.flush()
