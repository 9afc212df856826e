"""Loops as the API takes and shows them. Every model refuses unknown keys (a typo is a 422)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.loops.models import LoopStatus, StepName, StepStatus
from app.validation import STORABLE, Id, JsonObject, SafeText

Prompt = Annotated[SafeText, Field(min_length=1, max_length=100_000)]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), STORABLE
]
MAX_ITERATIONS = 100
MAX_PROMPTS = 10_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UpdateKind(StrEnum):
    dpo = "dpo"
    best_of_n = "best_of_n"
    expert_iteration = "expert_iteration"


class RewardModelSpec(_Strict):
    """The reward model each iteration trains: a registered base model and the reward_model
    run config (README "Configs"; no model paths)."""

    base_model_id: Id
    config: JsonObject = Field(default_factory=dict)


class UpdateSpec(_Strict):
    """How the policy is updated each iteration: a training run of this kind whose base is the
    iteration's policy and whose reward model is the iteration's."""

    kind: UpdateKind
    config: JsonObject = Field(default_factory=dict)


class SamplingSpec(_Strict):
    """How the policy samples the iteration's items (as POST /projects/{pid}/generate)."""

    n: int = Field(1, ge=1, le=100)  # items per prompt
    responses_per_item: int | None = Field(None, ge=2, le=16)  # ranking projects
    params: JsonObject = Field(default_factory=dict)  # temperature, top_p, max_tokens, seed
    backend: Annotated[str, Field(min_length=1, max_length=64)] = "transformers"
    backend_params: JsonObject = Field(default_factory=dict)


class StopRules(_Strict):
    """Waiting for labels: until every item has its labels or the deadline passes. At the
    deadline, `proceed` trains on the labels there are when at least `min_labels` items are
    labelled (else the loop stops with the reason); `stop` always stops the loop."""

    label_deadline_seconds: int = Field(24 * 3600, ge=1, le=90 * 24 * 3600)
    min_labels: int = Field(1, ge=1, le=10_000_000)
    at_deadline: Literal["proceed", "stop"] = "proceed"


class EvaluationSpec(_Strict):
    """Each iteration's evaluation: the policies sample on these prompts (default: the first
    `num_prompts` of the loop's prompts or prompt set) and are compared by the reward model,
    a judge, a gold reward (simulated worlds) and humans on a sample."""

    prompts: Annotated[list[Prompt], Field(min_length=1, max_length=MAX_PROMPTS)] | None = None
    num_prompts: int = Field(16, ge=1, le=MAX_PROMPTS)
    max_new_tokens: int = Field(64, ge=1, le=32_768)
    temperature: float = Field(1.0, gt=0, le=5, allow_inf_nan=False)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    judge_id: Id | None = None
    gold_reward: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    human_sample: int = Field(0, ge=0, le=1000)


class LoopCreate(_Strict):
    project_id: Id
    name: Name | None = None
    policy_model_id: Id
    # A routing policy to attach to the project (admin), else the project's own routing if it
    # has one, else items go to its annotators as usual.
    routing_policy_id: Id | None = None
    # Judges: the routing's pool when routing_policy_id is given; without routing, judge runs
    # on each iteration's items.
    judge_ids: Annotated[list[Id], Field(max_length=20)] = Field(default_factory=list)
    reward_model: RewardModelSpec
    update: UpdateSpec
    iterations: int = Field(ge=1, le=MAX_ITERATIONS)
    prompts_per_iteration: int = Field(ge=1, le=MAX_PROMPTS)
    # Exactly one of: the prompts (iteration i takes the next prompts_per_iteration, wrapping
    # around), or a prompt set of the project (iteration i takes a seeded sample of it).
    prompts: Annotated[list[Prompt], Field(min_length=1, max_length=MAX_PROMPTS)] | None = None
    prompt_set_id: Id | None = None
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    stop: StopRules = Field(default_factory=StopRules)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)

    @model_validator(mode="after")
    def _enough_prompts(self) -> LoopCreate:
        if (self.prompts is None) == (self.prompt_set_id is None):
            raise ValueError("give exactly one of `prompts` and `prompt_set_id`")
        if self.prompts is not None and self.prompts_per_iteration > len(self.prompts):
            raise ValueError(
                f"prompts_per_iteration ({self.prompts_per_iteration}) is more than the"
                f" {len(self.prompts)} prompts given"
            )
        return self


class LoopQueued(BaseModel):
    id: int
    job_id: int  # the first step's job (iteration 1's generation)
    status: str = "running"


class StepOut(BaseModel):
    iteration: int
    step: StepName
    status: StepStatus
    job_id: int | None
    job_status: str | None
    progress: float | None
    links: dict[str, Any]
    detail: dict[str, Any] | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class IterationOut(BaseModel):
    iteration: int
    policy_model_id: int  # samples in this iteration
    reward_model_id: int | None
    new_policy_model_id: int | None
    label_deadline: datetime | None
    metrics: dict[str, Any] | None
    steps: list[StepOut]
    finished_at: datetime | None


class Pending(BaseModel):
    """What the loop waits for now (the labels step)."""

    iteration: int
    items: int
    labelled: int
    waiting_human: int
    waiting_judges: int
    min_labels: int
    deadline: datetime | None


class LoopOut(BaseModel):
    id: int
    project_id: int
    name: str
    status: LoopStatus
    reason: str | None
    config: dict[str, Any]
    current_iteration: int
    current_step: StepName | None
    pending: Pending | None
    iterations: list[IterationOut]
    created_by: int | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class LoopSummary(BaseModel):
    id: int
    project_id: int
    name: str
    status: LoopStatus
    reason: str | None
    iterations: int
    current_iteration: int
    current_step: StepName | None
    created_at: datetime
    finished_at: datetime | None
