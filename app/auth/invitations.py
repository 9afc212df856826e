"""Invitations: an admin or researcher invites an email into a project with a role; the link
is single-use and expires; accepting it creates the account (the invitee sets the password),
adds it to the project and logs the browser in.

The link is `/invite/<id>.<hmac>` where hmac = HMAC(secret key, id and a random salt): only
the salt is stored, so the table alone yields no usable link, while the server can show a
pending link again to whoever may manage the project's members.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from app.audit.service import record
from app.auth.models import Invitation, InvitedRole, Role, User
from app.auth.service import Principal, create_user, require_role
from app.config import get_settings
from app.errors import AlreadyExists, Conflict, NotFound
from app.pagination import Keyset
from app.projects.models import Project, ProjectMember
from app.projects.service import get_project

DEFAULT_DAYS = 7


class InvitationClosed(Conflict):
    """The invitation was used, revoked, or has expired: ask for a new one."""

    code = "invitation_closed"


def _mac(invitation_id: int, salt: bytes) -> str:
    key = get_settings().resolved_secret_key().encode()
    msg = b"invite:" + str(invitation_id).encode() + b":" + salt
    return hmac.new(key, msg, hashlib.sha256).hexdigest()[:40]


def token_of(invitation: Invitation) -> str:
    return f"{invitation.id}.{_mac(invitation.id, invitation.salt)}"


def link_of(invitation: Invitation) -> str:
    return f"/invite/{token_of(invitation)}"


def status_of(invitation: Invitation, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    if invitation.accepted_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= now:
        return "expired"
    return "pending"


def create_invitation(
    session: Session,
    principal: Principal,
    project_id: int,
    email: str,
    role: InvitedRole,
    days: int = DEFAULT_DAYS,
) -> Invitation:
    """Researchers invite into projects they are members of (admins into any)."""
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    address = email.strip().lower()
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise AlreadyExists(
            f"{address} already has an account: add them as a member of the project instead."
        )
    invitation = Invitation(
        email=address,
        project_id=project.id,
        role=role,
        salt=secrets.token_bytes(16),
        created_by=principal.id,
        expires_at=datetime.now(UTC) + timedelta(days=days),
    )
    session.add(invitation)
    session.flush()
    record(
        session, principal.id, "invitation.create", "project", project.id,
        invitation_id=invitation.id, email=address, role=role.value,
    )  # fmt: skip
    return invitation


def list_invitations(
    session: Session,
    principal: Principal,
    project_id: int | None,
    page: Keyset,
    *,
    pending_only: bool,
) -> list[Invitation]:
    """Invitations newest first, of one project or of every project the caller manages
    (admins: all), up to limit+1 of them."""
    require_role(principal, Role.researcher)
    stmt = select(Invitation).order_by(Invitation.id.desc()).limit(page.limit + 1)
    if project_id is not None:
        stmt = stmt.where(Invitation.project_id == get_project(session, principal, project_id).id)
    elif not principal.is_admin:
        stmt = stmt.where(
            exists().where(
                ProjectMember.project_id == Invitation.project_id,
                ProjectMember.user_id == principal.id,
            )
        )
    if pending_only:
        stmt = stmt.where(
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > datetime.now(UTC),
        )
    if page.after_id is not None:
        stmt = stmt.where(Invitation.id < page.after_id)
    return list(session.scalars(stmt))


def revoke_invitation(session: Session, principal: Principal, invitation_id: int) -> Invitation:
    require_role(principal, Role.researcher)
    invitation = session.get(Invitation, invitation_id)
    if invitation is None:
        raise NotFound(f"Invitation {invitation_id} does not exist.")
    get_project(session, principal, invitation.project_id)  # 404 unless you manage it
    if invitation.accepted_at is not None:
        raise InvitationClosed("This invitation was already accepted.")
    if invitation.revoked_at is None:
        invitation.revoked_at = datetime.now(UTC)
        record(
            session, principal.id, "invitation.revoke", "project", invitation.project_id,
            invitation_id=invitation.id,
        )  # fmt: skip
    session.flush()
    return invitation


@dataclass(frozen=True, slots=True)
class OpenInvitation:
    invitation: Invitation
    project_name: str


def find_open(session: Session, token: str) -> OpenInvitation:
    """The invitation behind a link, if it can still be accepted (else 404 or 409)."""
    head, _, mac = token.partition(".")
    unknown = NotFound("This invitation link is not valid; check that you copied all of it.")
    if not (head.isascii() and head.isdigit() and len(head) <= 18 and mac):
        raise unknown
    invitation = session.get(Invitation, int(head))
    if invitation is None or not hmac.compare_digest(_mac(invitation.id, invitation.salt), mac):
        raise unknown
    state = status_of(invitation)
    if state != "pending":
        raise InvitationClosed(
            f"This invitation was {state}; ask the person who invited you for a new link."
            if state != "expired"
            else "This invitation has expired; ask the person who invited you for a new link."
        )
    project = session.get_one(Project, invitation.project_id)
    return OpenInvitation(invitation, project.name)


def accept(session: Session, token: str, password: str) -> tuple[User, int]:
    """Create the account with the invitee's password and add it to the project, exactly once.

    Returns (user, project_id). The claim is one conditional UPDATE, so two concurrent accepts
    of one link create one account.
    """
    found = find_open(session, token)
    claimed = session.execute(
        update(Invitation)
        .where(
            Invitation.id == found.invitation.id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > datetime.now(UTC),
        )
        .values(accepted_at=datetime.now(UTC))
        .returning(Invitation.email, Invitation.role, Invitation.project_id)
    ).one_or_none()
    if claimed is None:
        raise InvitationClosed("This invitation was just used; log in instead.")
    email, role, project_id = claimed
    try:
        user = create_user(session, email, password, Role(role))
    except AlreadyExists:
        raise AlreadyExists(
            f"{email} already has an account; log in, or ask an admin to reset the password."
        ) from None
    session.execute(
        update(Invitation)
        .where(Invitation.id == found.invitation.id)
        .values(accepted_user_id=user.id)
    )
    session.add(ProjectMember(project_id=project_id, user_id=user.id))
    record(session, user.id, "invitation.accept", "project", project_id, user_id=user.id)
    session.flush()
    return user, project_id
