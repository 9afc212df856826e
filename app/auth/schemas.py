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

from app.auth.models import Role
from app.auth.passwords import MIN_PASSWORD_LENGTH
from app.validation import STORABLE, storable_text

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
