"""The library's entry point: run one training config on one input folder, inside a job.

`run_training` is what a training job calls on the worker: it checks the input, dispatches to
the kind's module, and returns the artifacts folder and metrics. Every kind resumes from what
an earlier attempt of the same job checkpointed and stops when the job is cancelled.
"""

from __future__ import annotations

from pathlib import Path

from app.jobs.context import JobContext
from app.training.config import (
    BestOfNConfig,
    DpoConfig,
    ExpertIterationConfig,
    RewardModelConfig,
    SftConfig,
    TrainingConfig,
)
from app.training.errors import TrainingInputError
from app.training.reporter import REPORT_EVERY_S
from app.training.run_types import BackendFactory
from app.training.session import RunSession, TrainingResult
from app.training.snapshot import open_snapshot


def run_training(
    config: TrainingConfig,
    input_dir: Path,
    out_dir: Path,
    ctx: JobContext,
    *,
    backends: BackendFactory | None = None,
    report_every_s: float = REPORT_EVERY_S,
) -> TrainingResult:
    """Train (or sample) per `config` from `input_dir` into `out_dir`.

    `input_dir` is an export snapshot folder, or for SFT on samples the artifacts folder of a
    best_of_n run. `out_dir` appears only when the run succeeds, whole.
    """
    session = RunSession.start(ctx, out_dir, report_every_s=report_every_s)
    if isinstance(config, SftConfig) and config.source == "samples":
        from app.training.sft import train_sft_on_samples

        return train_sft_on_samples(config, input_dir, session)
    snapshot = open_snapshot(input_dir)
    if isinstance(config, RewardModelConfig):
        from app.training.reward_model import train_reward_model

        return train_reward_model(config, snapshot, session)
    if isinstance(config, DpoConfig):
        from app.training.dpo import train_dpo

        return train_dpo(config, snapshot, session)
    if isinstance(config, SftConfig):
        from app.training.sft import train_sft_on_rewrites

        return train_sft_on_rewrites(config, snapshot, session)
    if backends is None:
        raise TrainingInputError(
            f"{config.kind} samples from a policy and needs a backend factory."
        )
    if isinstance(config, BestOfNConfig):
        from app.training.best_of_n import run_best_of_n

        return run_best_of_n(config, snapshot, session, backends)
    if isinstance(config, ExpertIterationConfig):
        from app.training.expert_iteration import run_expert_iteration

        return run_expert_iteration(config, snapshot, session, backends)
    raise TrainingInputError(f"unknown training kind {config!r}")
