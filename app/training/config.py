"""Typed configs of the training kinds; unknown keys and out-of-range values are refused.

Importing this module costs nothing heavy: the API validates configs with it (a 422 names the
offending field) before a run is queued. Paths are checked for existence on the worker, where
the files live (`app.training.loading`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    TypeAdapter,
    model_validator,
)


def _model_path(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("a model path must not be empty")
    if "\x00" in value:
        raise ValueError("a model path must not contain NUL characters")
    return value


# A local model folder (config.json and weights, as `save_pretrained` writes it) or a .gguf file.
ModelPath = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_model_path)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Precision(StrEnum):
    auto = "auto"  # bf16 on a GPU that supports it, else fp32
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class Lora(_Strict):
    """Train low-rank adapters (peft) instead of every weight."""

    r: int = Field(16, ge=1, le=1024)
    alpha: int = Field(32, ge=1, le=4096)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: (
        list[Annotated[str, Field(min_length=1, max_length=128)]] | Literal["all-linear"]
    ) = "all-linear"
    # Merge the adapters into the base weights when saving, so that the artifact is one plain
    # model folder; false keeps adapter_model.safetensors + adapter_config.json only.
    merge: bool = True


class TrainSettings(_Strict):
    """What every kind that trains weights shares."""

    base_model: ModelPath
    tokenizer: ModelPath | None = None  # defaults to the base model's own
    lora: Lora | None = None
    epochs: float = Field(1.0, gt=0, le=1000)
    max_steps: int | None = Field(None, ge=1, le=10_000_000)  # set: overrides epochs
    learning_rate: float = Field(5e-5, gt=0, le=1)
    batch_size: int = Field(8, ge=1, le=4096)  # per device
    gradient_accumulation_steps: int = Field(1, ge=1, le=1024)
    max_length: int = Field(1024, ge=8, le=262_144)  # tokens of prompt + response
    seed: int = Field(0, ge=0, le=2**32 - 1)
    eval_fraction: float = Field(0.1, ge=0, lt=1)  # held out by item, never by vote
    checkpoint_every: int = Field(100, ge=1, le=10_000_000)  # steps
    log_every: int = Field(10, ge=1, le=10_000_000)  # steps between loss-curve points
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, le=1)
    precision: Precision = Precision.auto
    gradient_checkpointing: bool = False


class JudgeTemplateSpec(_Strict):
    id: int | None = None
    version: int | None = None
    system: str = ""
    user: Annotated[str, Field(min_length=1)]
    inconsistent: str = "drop"


class JudgeSpec(_Strict):
    """A judge as the worker calls it: backend, model, params (app.judges) and the pairwise
    template, copied when the run starts so that the run records what judged it."""

    id: int | None = None
    name: str = ""
    backend: Annotated[str, Field(min_length=1, max_length=64)]
    model: Annotated[str, Field(max_length=4096)] = ""
    params: dict[str, JsonValue] = Field(default_factory=dict)
    template: JudgeTemplateSpec
    guidelines: str = ""


class PolicyEval(_Strict):
    """How a trained policy is compared with its parent on held-out prompts."""

    prompts: int = Field(32, ge=0, le=100_000)  # 0: no sampling-based evaluation
    max_new_tokens: int = Field(64, ge=1, le=32_768)
    temperature: float = Field(1.0, gt=0, le=5)
    # Scores both policies' samples: win rate against the parent, mean reward of each.
    reward_model: ModelPath | None = None
    # A judge asks which of the two samples is better, in both orders: the judge's win rate.
    # Runs name a registered judge (`judge_id`); the job copies it into `judge`.
    judge_id: int | None = Field(None, ge=1, le=2**63 - 1)
    judge: JudgeSpec | None = None


class Sampling(_Strict):
    """Sampling through an inference backend (`transformers` on a CPU, `vllm` on a GPU)."""

    backend: Annotated[str, Field(min_length=1, max_length=64)] = "transformers"
    n: int = Field(4, ge=2, le=256)  # samples per prompt
    temperature: float = Field(1.0, gt=0, le=5)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(256, ge=1, le=32_768)
    prompts_per_batch: int = Field(16, ge=1, le=4096)
    max_prompts: int | None = Field(None, ge=1, le=10_000_000)
    options: dict[str, JsonValue] = Field(default_factory=dict)  # backend-specific settings


class RewardModelConfig(TrainSettings):
    """Bradley-Terry (`preference`), Plackett-Luce (`ranking`) or per-label spans (`spans`)."""

    kind: Literal["reward_model"] = "reward_model"
    learning_rate: float = Field(1e-5, gt=0, le=1)
    # Bradley-Terry: pulls the mean reward towards 0 (TRL's center_rewards_coefficient).
    center_rewards_coefficient: float | None = Field(None, ge=0, le=100)
    # Spans: a token counts as marked when the label's probability is at least this.
    span_threshold: float = Field(0.5, gt=0, lt=1)


class DpoConfig(TrainSettings):
    """Direct preference optimisation (TRL DPOTrainer) from a `preference` snapshot."""

    kind: Literal["dpo"] = "dpo"
    learning_rate: float = Field(1e-6, gt=0, le=1)
    beta: float = Field(0.1, gt=0, le=100)
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust"] = "sigmoid"
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)
    reference_model: ModelPath | None = None  # defaults to base_model
    evaluation: PolicyEval = Field(default_factory=PolicyEval)


class SftConfig(TrainSettings):
    """Supervised fine-tuning on critique rewrites (ILF) or on selected samples."""

    kind: Literal["sft"] = "sft"
    learning_rate: float = Field(2e-5, gt=0, le=1)
    # rewrites: a `critique` snapshot's rewrites; samples: the best samples of a best_of_n run.
    source: Literal["rewrites", "samples"] = "rewrites"
    # rewrites: also train on responses that were rated at least this and left as they were.
    min_rating: int | None = Field(None, ge=1, le=7)
    evaluation: PolicyEval = Field(default_factory=PolicyEval)


class BestOfNConfig(_Strict):
    """Sample n responses per prompt, score them with a reward model, keep the best."""

    kind: Literal["best_of_n"] = "best_of_n"
    policy: ModelPath
    reward_model: ModelPath
    sampling: Sampling = Field(default_factory=Sampling)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    max_length: int = Field(1024, ge=8, le=262_144)  # tokens the reward model reads


class ExpertIterationConfig(TrainSettings):
    """Sample from the policy, keep the top by a reward model, fine-tune the policy on them."""

    kind: Literal["expert_iteration"] = "expert_iteration"
    learning_rate: float = Field(2e-5, gt=0, le=1)
    reward_model: ModelPath
    sampling: Sampling = Field(default_factory=Sampling)
    keep_top: int = Field(1, ge=1, le=256)  # samples kept per prompt
    evaluation: PolicyEval = Field(default_factory=PolicyEval)

    @model_validator(mode="after")
    def _keep_fewer_than_sampled(self) -> ExpertIterationConfig:
        if self.keep_top >= self.sampling.n:
            raise ValueError(
                f"keep_top ({self.keep_top}) must be smaller than sampling.n ({self.sampling.n}):"
                " keeping every sample selects nothing"
            )
        return self


TrainingConfig = Annotated[
    RewardModelConfig | DpoConfig | SftConfig | BestOfNConfig | ExpertIterationConfig,
    Field(discriminator="kind"),
]
KINDS = ("reward_model", "dpo", "sft", "best_of_n", "expert_iteration")
_ADAPTER: TypeAdapter[TrainingConfig] = TypeAdapter(TrainingConfig)


def parse_config(data: Mapping[str, Any]) -> TrainingConfig:
    """Validate a config (`kind` picks the model); raises pydantic.ValidationError."""
    return _ADAPTER.validate_python(dict(data))
