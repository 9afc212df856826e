"""Users, login and tokens: the rules shared by the API, the pages and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.audit.service import record
from app.auth import tokens
from app.auth.models import ROLE_RANK, ApiToken, Role, TokenKind, User
from app.auth.passwords import dummy_hash, hash_password, verify_password
from app.errors import AlreadyExists, Forbidden, Unauthorized


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request."""

    id: int
    email: str
    role: Role
    token: str
    via_cookie: bool = False

    def has_role(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin


def require_role(principal: Principal, role: Role) -> None:
    if not principal.has_role(role):
        raise Forbidden(f"This action needs the {role.value} role; you are {principal.role.value}.")


def create_user(
    session: Session, email: str, password: str, role: Role, actor_id: int | None = None
) -> User:
    stmt = (
        insert(User)
        .values(email=email.lower(), password_hash=hash_password(password), role=role.value)
        .on_conflict_do_nothing(index_elements=[User.email])
        .returning(User.id)
    )
    user_id = session.execute(stmt).scalar_one_or_none()
    if user_id is None:
        raise AlreadyExists(f"A user with email {email} already exists.")
    record(session, actor_id, "user.create", "user", user_id, email=email, role=role.value)
    return session.get_one(User, user_id)


def authenticate(session: Session, email: str, password: str) -> User:
    user = session.scalars(select(User).where(User.email == email.lower())).one_or_none()
    if user is None:
        verify_password(dummy_hash(), password)
        raise Unauthorized("Wrong email or password.")
    if not verify_password(user.password_hash, password):
        raise Unauthorized("Wrong email or password.")
    if not user.is_active:
        # Said only to someone who knows the password: it tells an outsider nothing.
        raise Unauthorized("This account is disabled; ask an admin to enable it.")
    return user


def issue_token(
    session: Session, user: User, kind: TokenKind, ttl_seconds: int
) -> tuple[str, datetime]:
    token = tokens.new_token()
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl_seconds)
    session.add(
        ApiToken(
            user_id=user.id, token_hash=tokens.digest(token), kind=kind.value, expires_at=expires_at
        )
    )
    session.flush()
    return token, expires_at


_RESOLVE = text(
    """
    SELECT u.id, u.email, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
    WHERE t.token_hash = :h AND t.kind = :k AND t.revoked_at IS NULL
      AND t.expires_at > now() AND u.is_active
    """
)


def resolve_token(session: Session, token: str, kind: TokenKind) -> Principal | None:
    # Plain SQL: this runs on every request, and building an ORM query each time cost ~20%
    # of the CPU of an annotate round trip.
    row = session.execute(_RESOLVE, {"h": tokens.digest(token), "k": kind.value}).one_or_none()
    if row is None:
        return None
    return Principal(
        id=row.id,
        email=row.email,
        role=Role(row.role),
        token=token,
        via_cookie=kind is TokenKind.session,
    )


def revoke_token(session: Session, token: str) -> None:
    session.execute(
        update(ApiToken)
        .where(ApiToken.token_hash == tokens.digest(token), ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
