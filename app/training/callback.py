"""The Hugging Face `TrainerCallback` that connects any HF/TRL trainer to a job's Reporter.

Progress and loss go out after each step and log line, every saved checkpoint is recorded, and
a cancel request stops training at the end of the current step. In a distributed run (accelerate
launch) only rank 0 talks to the job; its decision to stop is broadcast so that every rank leaves
the loop at the same step instead of one waiting forever in a collective.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.training.reporter import Reporter

if TYPE_CHECKING:
    from transformers import TrainerCallback, TrainingArguments


def _agree(flag: bool, args: TrainingArguments) -> bool:
    """Rank 0's flag, on every rank."""
    if args.world_size <= 1:
        return flag
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([1 if flag else 0], device=args.device)
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


def trainer_callback(reporter: Reporter) -> TrainerCallback:
    from transformers import TrainerCallback, TrainerControl, TrainerState

    class JobCallback(TrainerCallback):  # type: ignore[misc]
        def on_step_end(
            self,
            args: TrainingArguments,
            state: TrainerState,
            control: TrainerControl,
            **kwargs: Any,
        ) -> TrainerControl:
            reporter.step(state.global_step, state.max_steps)
            if _agree(reporter.cancel_requested, args):
                reporter.cancel_requested = True
                control.should_training_stop = True
                control.should_save = False  # a cancelled run is not resumed
            return control

        def on_log(
            self,
            args: TrainingArguments,
            state: TrainerState,
            control: TrainerControl,
            logs: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> TrainerControl:
            reporter.logged(state.global_step, state.max_steps, logs or {})
            return control

        def on_save(
            self,
            args: TrainingArguments,
            state: TrainerState,
            control: TrainerControl,
            **kwargs: Any,
        ) -> TrainerControl:
            # Called after the checkpoint folder is complete (weights, optimizer, trainer state).
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            reporter.saved(state.global_step, folder)
            return control

    return JobCallback()
