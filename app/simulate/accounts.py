"""Simulated annotators' accounts: users created or reused by email, made project members, and
given API tokens to work with (revoked when the run ends)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Role, TokenKind, User
from app.auth.service import create_user, issue_token, revoke_token
from app.errors import Invalid, NotFound
from app.projects.models import Project
from app.projects.service import add_member
from app.simulate.service import principal_of

EMAIL_DOMAIN = "simulated.tandem"
PREFIX = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


@dataclass(frozen=True, slots=True)
class Enlisted:
    user_id: int
    email: str
    token: str


def annotator_email(prefix: str, n: int) -> str:
    return f"{prefix}-{n + 1:02d}@{EMAIL_DOMAIN}"


def _project_owner(session: Session, project: Project) -> User:
    owner = session.get(User, project.created_by) if project.created_by is not None else None
    if owner is None or owner.role == Role.annotator.value or not owner.is_active:
        owner = session.scalars(
            select(User).where(User.role == Role.admin.value, User.is_active).order_by(User.id)
        ).first()
    if owner is None:
        raise NotFound(f"Project {project.id} has no active owner or admin to add members as.")
    return owner


def enlist(
    session: Session, project_id: int, count: int, prefix: str, token_ttl_s: int
) -> list[Enlisted]:
    """`count` annotator users `<prefix>-NN@simulated.tandem`, members of the project, each with
    a fresh API token. Existing users of those emails are reused (their password untouched);
    new ones get a random password nobody is told: they work through tokens."""
    if not PREFIX.fullmatch(prefix):
        raise Invalid(
            "The annotator prefix must be 1 to 40 lowercase letters, digits or dashes,"
            " starting with a letter or digit."
        )
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"Project {project_id} does not exist.")
    owner = principal_of(_project_owner(session, project))
    out = []
    for n in range(count):
        email = annotator_email(prefix, n)
        user = session.scalars(select(User).where(User.email == email)).one_or_none()
        if user is None:
            user = create_user(
                session, email, secrets.token_urlsafe(24), Role.annotator, actor_id=owner.id
            )
        elif not user.is_active:
            raise Invalid(f"The user {email} is deactivated; use another --prefix.")
        add_member(session, owner, project.id, user.id)
        token, _ = issue_token(session, user, TokenKind.api, token_ttl_s)
        out.append(Enlisted(user.id, email, token))
    return out


def release(session: Session, enlisted: list[Enlisted]) -> None:
    """Revoke the run's tokens (the users and memberships stay, for the next run)."""
    for e in enlisted:
        revoke_token(session, e.token)
