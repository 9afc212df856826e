"""What the prompt-set routes take and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.prompts.models import PromptSource
from app.prompts.readers import MAX_PROMPT_CHARS, MAX_PROMPTS
from app.validation import STORABLE

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), STORABLE
]
Prompt = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_PROMPT_CHARS, pattern=r"\S"), STORABLE
]


class PromptSetCreate(BaseModel):
    """A prompt set from a JSON list (a file goes as multipart/form-data: `name`, `file`)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    prompts: Annotated[list[Prompt], Field(min_length=1, max_length=MAX_PROMPTS)]


class PromptSetOut(BaseModel):
    id: int
    project_id: int
    name: str
    source: PromptSource
    count: int
    sha256: str
    created_by: int | None
    created_at: datetime
    # Only in GET of one set: the prompts, in order.
    prompts: list[str] | None = None
