"""Users and their hashed bearer/session tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, CreatedAt, EnumText, enum_check


class Role(StrEnum):
    annotator = "annotator"
    researcher = "researcher"
    admin = "admin"


ROLE_RANK = {Role.annotator: 0, Role.researcher: 1, Role.admin: 2}


class TokenKind(StrEnum):
    api = "api"
    session = "session"


class User(CreatedAt, Base):
    __tablename__ = "users"
    __table_args__ = (
        enum_check("role", Role),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(Text, unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[Role] = mapped_column(EnumText(Role))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")


class ApiToken(CreatedAt, Base):
    """Only sha256(token) is stored: a leaked table does not leak usable tokens."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        enum_check("kind", TokenKind),
        Index("ix_api_tokens_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    kind: Mapped[TokenKind] = mapped_column(EnumText(TokenKind))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class InvitedRole(StrEnum):
    """The roles an invitation may grant: admins are made by admins, never by a link."""

    annotator = "annotator"
    researcher = "researcher"


class Invitation(CreatedAt, Base):
    """A single-use, expiring link that creates an account and adds it to a project.

    The link's secret is HMAC(secret key, id + salt): the server can show a pending link again
    to those who may see it, and a leaked table alone gives no usable link.
    """

    __tablename__ = "invitations"
    __table_args__ = (
        enum_check("role", InvitedRole),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        Index("ix_invitations_project_id", "project_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(Text)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    role: Mapped[InvitedRole] = mapped_column(EnumText(InvitedRole))
    salt: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
