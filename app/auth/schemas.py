"""Request and response bodies of the auth routes."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from app.auth.models import InvitedRole, Role
from app.auth.passwords import MIN_PASSWORD_LENGTH
from app.validation import STORABLE, Id, storable_text

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def _email(value: str) -> str:
    value = storable_text(value).strip().lower()
    if not _EMAIL.match(value):
        raise ValueError("is not an email address")
    return value


Email = Annotated[
    str,
    StringConstraints(max_length=320),
    AfterValidator(_email),
    WithJsonSchema({"type": "string", "maxLength": 320, "pattern": r"^\s*[^@\s]+@[^@\s]+\s*$"}),
]
Password = Annotated[
    str, StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=1024), STORABLE
]


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024), STORABLE]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    password: Password
    role: Role = Role.annotator


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str
    role: Role


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime


class SessionOut(BaseModel):
    csrf_token: str = Field(description="Send as X-CSRF-Token on state-changing requests.")
    user: UserOut


class UserAdminOut(BaseModel):
    """A user as admins see them."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str
    role: Role
    is_active: bool
    created_at: datetime


class UserPage(BaseModel):
    items: list[UserAdminOut]
    next_cursor: str | None


class UserPatch(BaseModel):
    """What an admin may change: the role, whether the account works, and its password."""

    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    is_active: bool | None = Field(
        default=None, description="false disables the account and ends its sessions and tokens."
    )
    password: Password | None = Field(
        default=None, description="Sets a new password and ends the user's sessions and tokens."
    )


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=1024), STORABLE]
    new_password: Password


class InvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    project_id: Id
    role: InvitedRole = InvitedRole.annotator
    expires_in_days: Annotated[int, Field(ge=1, le=30)] = 7


class InvitationOut(BaseModel):
    id: int
    email: str
    project_id: int
    role: InvitedRole
    status: Literal["pending", "accepted", "revoked", "expired"]
    expires_at: datetime
    created_at: datetime
    url: str | None = Field(description="The link to send (path on this server); while pending.")


class InvitationPage(BaseModel):
    items: list[InvitationOut]
    next_cursor: str | None


class InvitationAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: Annotated[str, StringConstraints(min_length=1, max_length=200), STORABLE] = Field(
        description="The last part of the invitation's url."
    )
    password: Password


class InvitationAccepted(BaseModel):
    user: UserOut
    project_id: int
