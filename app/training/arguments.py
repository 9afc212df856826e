"""The TRL/HF training arguments every kind shares, built from a config's TrainSettings."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from app.training.config import Precision, TrainSettings
from app.training.loading import resolve_precision

CHECKPOINTS = "checkpoints"  # under the job's work_dir


def training_arguments(
    config_class: type[Any], settings: TrainSettings, work_dir: Path, **extra: Any
) -> Any:
    """`config_class` (RewardConfig, DPOConfig, SFTConfig, TrainingArguments) for this run.

    Checkpoints go to work_dir/checkpoints every `checkpoint_every` steps (the last two are
    kept); nothing is reported to outside services; evaluation is the run's own, at the end.
    """
    import torch

    precision = resolve_precision(settings.precision)
    if precision in (Precision.bf16, Precision.fp16) and not torch.cuda.is_available():
        precision = Precision.fp32 if precision is Precision.fp16 else precision
    kwargs: dict[str, Any] = {
        "output_dir": str(work_dir / CHECKPOINTS),
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps or -1,
        "learning_rate": settings.learning_rate,
        "per_device_train_batch_size": settings.batch_size,
        "per_device_eval_batch_size": settings.batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation_steps,
        "seed": settings.seed,
        "data_seed": settings.seed,
        "warmup_steps": settings.warmup_ratio,  # a float below 1 is a ratio of all steps
        "weight_decay": settings.weight_decay,
        "bf16": precision is Precision.bf16,
        "fp16": precision is Precision.fp16,
        "use_cpu": not torch.cuda.is_available(),
        "save_strategy": "steps",
        "save_steps": settings.checkpoint_every,
        "save_total_limit": 2,
        "logging_strategy": "steps",
        "logging_steps": settings.log_every,
        "eval_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        **extra,
    }
    # transformers 5 renamed gradient_checkpointing (the old name still works, with a warning).
    names = {f.name for f in dataclasses.fields(config_class)}
    checkpointing = (
        "activation_checkpointing"
        if "activation_checkpointing" in names
        else "gradient_checkpointing"
    )
    kwargs.setdefault(checkpointing, settings.gradient_checkpointing)
    return config_class(**kwargs)
