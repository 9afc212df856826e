"""What POST /projects/{pid}/generate takes and answers."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.validation import Id, JsonObject, SafeText

Prompt = Annotated[SafeText, Field(min_length=1, max_length=100_000)]


class GenerateRequest(BaseModel):
    """Sample from a registered model and add the samples to the project as new items."""

    model_config = ConfigDict(extra="forbid")

    model_id: Id  # a base model or policy of the registry
    prompts: Annotated[list[Prompt], Field(min_length=1, max_length=10_000)]
    n: int = Field(1, ge=1, le=100)  # items per prompt
    # Responses per item for ranking projects (pairwise: 2; span and critique: 1).
    responses_per_item: int | None = Field(None, ge=2, le=16)
    # SamplingParams of app.inference (temperature, top_p, max_tokens, seed, stop); n is ours.
    sampling: JsonObject = Field(default_factory=dict)
    backend: Annotated[str, Field(min_length=1, max_length=64)] = "transformers"
    backend_params: JsonObject = Field(default_factory=dict)


class GenerateQueued(BaseModel):
    job_id: int
    status: str = "queued"
