"""Run kinds, and what each one's input and output are (cheap to import: the web uses it)."""

from __future__ import annotations

from enum import StrEnum

from app.exports.schemas import Schema
from app.projects.rules import TaskKind
from app.registry.models import ModelKind


class RunKind(StrEnum):
    reward_model = "reward_model"
    dpo = "dpo"
    sft = "sft"
    best_of_n = "best_of_n"
    expert_iteration = "expert_iteration"


# The snapshot schema a run takes by default, per project kind (None: this kind cannot train
# on that project's labels).
DEFAULT_SCHEMA: dict[RunKind, dict[TaskKind, Schema]] = {
    RunKind.reward_model: {
        TaskKind.pairwise: Schema.preference,
        TaskKind.ranking: Schema.ranking,
        TaskKind.span: Schema.spans,
    },
    RunKind.dpo: {TaskKind.pairwise: Schema.preference, TaskKind.ranking: Schema.preference},
    RunKind.sft: {TaskKind.critique: Schema.critique},
    RunKind.best_of_n: {
        TaskKind.pairwise: Schema.preference,
        TaskKind.ranking: Schema.ranking,
        TaskKind.span: Schema.spans,
        TaskKind.critique: Schema.critique,
    },
}
DEFAULT_SCHEMA[RunKind.expert_iteration] = DEFAULT_SCHEMA[RunKind.best_of_n]

# The schemas the library trains each kind on (app/training: require_schema).
ACCEPTS: dict[RunKind, tuple[Schema, ...]] = {
    RunKind.reward_model: (Schema.preference, Schema.ranking, Schema.spans),
    RunKind.dpo: (Schema.preference,),
    RunKind.sft: (Schema.critique,),
    RunKind.best_of_n: (Schema.preference, Schema.ranking, Schema.spans, Schema.critique),
    RunKind.expert_iteration: (Schema.preference, Schema.ranking, Schema.spans, Schema.critique),
}

# What a successful run registers (best_of_n keeps samples only: no new weights).
PRODUCES: dict[RunKind, ModelKind | None] = {
    RunKind.reward_model: ModelKind.reward_model,
    RunKind.dpo: ModelKind.policy,
    RunKind.sft: ModelKind.policy,
    RunKind.best_of_n: None,
    RunKind.expert_iteration: ModelKind.policy,
}
# Kinds that need a reward model (others may take one for their evaluation).
NEEDS_REWARD_MODEL = (RunKind.best_of_n, RunKind.expert_iteration)
