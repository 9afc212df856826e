"""Routing policies, decisions and the budget as the API takes and returns them.

Each strategy has its own params model (unknown keys are refused), so a bad policy is a 422
naming the field before anything is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.routing.models import Decision, Strategy
from app.validation import STORABLE, Id

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), STORABLE
]
Key = Annotated[str, StringConstraints(min_length=1, max_length=200), STORABLE]
Value = Annotated[str, StringConstraints(max_length=500), STORABLE]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Cost = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoParams(_Params):
    """all_human, all_ai: nothing to set."""


class RandomParams(_Params):
    fraction: Fraction = Field(description="Share of items sent to humans (within the budget).")


class Rule(_Params):
    key: Key = Field(description="A metadata key of the items.")
    values: Annotated[list[Value], Field(min_length=1, max_length=1000)] = Field(
        description="Metadata values (compared as text) this rule matches."
    )
    route: Decision


class RulesParams(_Params):
    rules: Annotated[list[Rule], Field(min_length=1, max_length=100)]
    default: Decision = Decision.ai


class UncertaintyParams(_Params):
    # An item is uncertain when the judge pool's probability margin |2p - 1| is below this,
    # when a judge's two orders disagree, or when the pool's judges disagree.
    margin_threshold: Fraction = 0.3
    use_swap: bool = True
    use_disagreement: bool = True


class LearnedParams(UncertaintyParams):
    # Dual-labelled items (human majority and AI label) needed before the model is used;
    # until then routing falls back to uncertainty with the thresholds above.
    min_train: Annotated[int, Field(ge=20, le=10_000_000)] = 200
    embedding: bool = Field(default=True, description="Use the MiniLM prompt embedding.")
    # Candidates are ranked by predicted gain + this weight x the uncertainty score (0: gain only).
    uncertainty_weight: Annotated[float, Field(ge=0, le=10)] = 1.0


PARAMS: dict[Strategy, type[_Params]] = {
    Strategy.all_human: NoParams,
    Strategy.all_ai: NoParams,
    Strategy.random: RandomParams,
    Strategy.rules: RulesParams,
    Strategy.uncertainty: UncertaintyParams,
    Strategy.learned: LearnedParams,
}


def parse_params(strategy: Strategy, raw: dict[str, Any]) -> _Params:
    return PARAMS[strategy].model_validate(raw)


MinHuman = dict[Key, dict[Value, Fraction]]


class PolicyFields(BaseModel):
    """A version's settings: POST creates version 1, PATCH adds a version."""

    model_config = ConfigDict(extra="forbid")

    strategy: Strategy
    params: dict[str, Any] = Field(default_factory=dict)
    human_budget: Cost = Field(default=0, description="Human budget in cost units.")
    human_cost: Cost = Field(default=1, description="Cost of one human annotation.")
    human_overlap: Annotated[int, Field(ge=1, le=100)] | None = Field(
        default=None, description="Human annotations per human item (default: the project's)."
    )
    audit_fraction: Fraction = Field(
        default=0, description="Uniform random share of items that always go to humans too."
    )
    min_human: MinHuman = Field(
        default_factory=dict,
        description='Minimum human fraction per metadata category: {"safety": {"moderate": 0.5}}.',
    )
    route_after_import: bool = False

    @model_validator(mode="after")
    def _check_params(self) -> PolicyFields:
        # Raised as ValueError so the 422 lists it; the message names the strategy.
        self.params = parse_params(self.strategy, self.params).model_dump(mode="json")
        return self


class PolicyCreate(PolicyFields):
    name: Name


class PolicyPatch(BaseModel):
    """Fields to change; the others are carried over from the latest version."""

    model_config = ConfigDict(extra="forbid")

    strategy: Strategy | None = None
    params: dict[str, Any] | None = None
    human_budget: Cost | None = None
    human_cost: Cost | None = None
    human_overlap: Annotated[int, Field(ge=1, le=100)] | None = None
    audit_fraction: Fraction | None = None
    min_human: MinHuman | None = None
    route_after_import: bool | None = None


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    version: int
    strategy: Strategy
    params: dict[str, Any]
    human_budget: float
    human_cost: float
    human_overlap: int | None
    audit_fraction: float
    min_human: dict[str, Any]
    route_after_import: bool
    created_at: datetime


class PolicyOut(BaseModel):
    id: int
    name: str
    created_at: datetime
    latest: VersionOut
    versions: list[VersionOut]


class RoutingSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy_id: Id
    version: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(
        default=None, description="Policy version (default: the latest)."
    )
    judge_ids: Annotated[list[Id], Field(max_length=20)] = Field(default_factory=list)


class BudgetOut(BaseModel):
    total: float
    reserved: float
    spent: float
    available: float
    reconciled_at: datetime | None


class RoutingOut(BaseModel):
    project_id: int
    policy_id: int
    policy_name: str
    version: VersionOut
    judge_ids: list[int]
    budget: BudgetOut
    held_items: int
    decisions: dict[str, int]


class RouteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = False
    sample: Annotated[int, Field(ge=1, le=10_000)] | None = Field(
        default=None,
        description="Dry run: how many held items to preview (default all, 10,000 max).",
    )
    limit: Annotated[int, Field(ge=1, le=10_000_000)] | None = Field(
        default=None, description="Route at most this many held items (oldest first)."
    )


class RouteQueued(BaseModel):
    job_id: int


class DecisionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    item_id: int
    policy_version_id: int
    job_id: int | None
    decision: Decision
    score: float | None
    reason: str
    predicted_gain: float | None
    reserved_cost: float
    spent_units: int
    created_at: datetime


DecisionFilter = Literal["human", "ai", "both"]
