"""Project settings as the API takes and returns them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.projects.rules import TaskKind
from app.validation import STORABLE, Id

Label = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), STORABLE
]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), STORABLE
]
# Span labels are picked with number keys 1..9 and 0 in the browser.
MAX_SPAN_LABELS = 10
MAX_ASPECTS = 20


def _unique(values: list[str]) -> list[str]:
    # A field validator (not a model one), so that the error's location names the field.
    if len(set(values)) != len(values):
        raise ValueError("must not repeat a value")
    return values


class ProjectSettings(BaseModel):
    """Fields shared by create and patch; all optional here."""

    model_config = ConfigDict(extra="forbid")

    guidelines: Annotated[str, StringConstraints(max_length=200_000), STORABLE] | None = None
    overlap: Annotated[int, Field(ge=1, le=100)] | None = None
    span_labels: (
        Annotated[list[Label], Field(max_length=MAX_SPAN_LABELS), AfterValidator(_unique)] | None
    ) = None
    aspects: (
        Annotated[list[Label], Field(max_length=MAX_ASPECTS), AfterValidator(_unique)] | None
    ) = None
    allow_tie: Annotated[bool, Field(strict=True)] | None = None
    lease_seconds: Annotated[int, Field(ge=10, le=7 * 24 * 3600)] | None = None


class ProjectCreate(ProjectSettings):
    name: Name
    kind: TaskKind


class ProjectPatch(ProjectSettings):
    name: Name | None = None


class ProjectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: TaskKind
    guidelines: str
    overlap: int
    span_labels: list[str]
    aspects: list[str]
    allow_tie: bool
    lease_seconds: int
    created_by: int | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: Id


class MemberOut(BaseModel):
    user_id: int
    email: str
    role: str
    added_at: datetime


class ProgressOut(BaseModel):
    """GET /projects/{pid}/progress: the project's totals and the caller's own counts."""

    project_id: int
    items: int
    items_complete: int = Field(description="Items with `overlap` counted human annotations.")
    percent_complete: int
    human_annotations: int
    votes_collected: int = Field(
        description="Counted human votes, at most `overlap` per item (so never above needed)."
    )
    votes_needed: int = Field(description="items times overlap.")
    percent_votes: int
    live_leases: int
    my_done: int
    my_skipped: int
    my_remaining: int = Field(description="Items the caller could still be served now.")
