"""What POST /projects/{pid}/generate takes and answers."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.validation import Id, JsonObject, SafeText

Prompt = Annotated[SafeText, Field(min_length=1, max_length=100_000)]


class GenerateRequest(BaseModel):
    """Sample from a registered model and add the samples to the project as new items."""

    model_config = ConfigDict(extra="forbid")

    model_id: Id  # a base model or policy of the registry
    # Exactly one of: the prompts themselves, or a prompt set of the project (app.prompts).
    prompts: Annotated[list[Prompt], Field(min_length=1, max_length=10_000)] | None = None
    prompt_set_id: Id | None = None
    # With prompt_set_id: sample this many of the set's prompts (seeded by prompt_seed, kept
    # in the set's order) instead of taking all of them; a loop draws one sample per iteration.
    prompt_sample: int | None = Field(None, ge=1, le=100_000)
    prompt_seed: int = Field(0, ge=0, le=2**32 - 1)
    n: int = Field(1, ge=1, le=100)  # items per prompt
    # Responses per item for ranking projects (pairwise: 2; span and critique: 1).
    responses_per_item: int | None = Field(None, ge=2, le=16)
    # SamplingParams of app.inference (temperature, top_p, max_tokens, seed, stop); n is ours.
    sampling: JsonObject = Field(default_factory=dict)
    backend: Annotated[str, Field(min_length=1, max_length=64)] = "transformers"
    backend_params: JsonObject = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> GenerateRequest:
        if (self.prompts is None) == (self.prompt_set_id is None):
            raise ValueError("give exactly one of `prompts` and `prompt_set_id`")
        if self.prompt_sample is not None and self.prompt_set_id is None:
            raise ValueError("`prompt_sample` samples a prompt set: give `prompt_set_id` too")
        return self


class GenerateQueued(BaseModel):
    job_id: int
    prompts: int  # how many prompts the job samples
    status: str = "queued"
