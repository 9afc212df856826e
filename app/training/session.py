"""What every kind does around its work: reporting, resuming a trainer, and publishing the result.

A `RunSession` is one attempt of one run: the job's context, the reporter, the output folder,
and whether this process is the one that writes (rank 0 under `accelerate launch`).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from app.jobs.context import JobContext
from app.training.arguments import training_arguments
from app.training.artifacts import METRICS, ArtifactWriter
from app.training.callback import trainer_callback
from app.training.checkpoints import resume_checkpoint, resume_step
from app.training.config import Lora, TrainSettings
from app.training.errors import TrainingInputError
from app.training.loading import unwrap_for_saving
from app.training.reporter import REPORT_EVERY_S, Reporter, curve_point


@dataclass(frozen=True, slots=True)
class TrainingResult:
    kind: str
    artifacts: Path | None  # None on the ranks of a distributed run that do not write
    metrics: dict[str, Any]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)


def is_main_process() -> bool:
    """Rank 0 of a distributed launch (torchrun and accelerate set RANK), or the only process.

    Read from the environment: creating accelerate's PartialState here, before the trainer's
    arguments do, would fix its device choice too early (a CPU run would not become MULTI_CPU).
    """
    return int(os.environ.get("RANK", "0")) == 0


def loss_curve(trainer: Any) -> list[dict[str, float]]:
    """One point per logged step, from the trainer's own history: a resumed run's curve starts
    at step 1 too (the history travels in the checkpoint)."""
    out = []
    for logs in trainer.state.log_history:
        point = curve_point(logs)
        if point is not None and "step" in logs:
            out.append({"step": float(logs["step"]), **point})
    return out


def torch_available_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def quiet_progress_bars() -> None:
    """Progress goes to the job; console bars would only fill the worker's log."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


@dataclass
class RunSession:
    ctx: JobContext
    out_dir: Path
    reporter: Reporter
    is_main: bool
    speed: dict[str, float | None] = field(default_factory=dict)

    @classmethod
    def start(
        cls, ctx: JobContext, out_dir: Path, *, report_every_s: float = REPORT_EVERY_S
    ) -> RunSession:
        main = is_main_process()
        quiet_progress_bars()
        reporter = Reporter(ctx, every_s=report_every_s, is_main=main)
        return cls(ctx, out_dir, reporter, main)

    def callbacks(self) -> list[Any]:
        return [trainer_callback(self.reporter)]

    def train(self, trainer: Any) -> None:
        """Train from the newest complete checkpoint of an earlier attempt, if any; a cancel
        request stops at the end of a step and raises JobCancelled here."""
        if getattr(trainer, "is_fsdp_enabled", False) and hasattr(trainer.model, "peft_config"):
            raise TrainingInputError(
                "LoRA under FSDP is not supported here: launch LoRA runs with DDP (--multi_gpu)"
                " or train every weight under FSDP."
            )
        resume = resume_checkpoint(
            self.reporter.state, self.ctx.work_dir, Path(trainer.args.output_dir)
        )
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # the loss goes to the job, not to stdout
        cpu = time.process_time()
        out = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        self.reporter.raise_if_cancelled()
        runtime = float(out.metrics.get("train_runtime", 0.0))
        self.speed = {
            "train_runtime_s": runtime,
            # CPU seconds of this process (all its threads): what a step costs on a shared host.
            "train_cpu_s": time.process_time() - cpu,
            # This attempt's own steps: a resumed run counts from its checkpoint.
            "train_steps_per_s": (trainer.state.global_step - (resume_step(resume) or 0)) / runtime
            if runtime
            else 0.0,
            # The checkpoint's step this attempt continued from (None: it started afresh).
            "resumed_from_step": resume_step(resume),
        }

    def fit_rows(
        self,
        trainer_class: type[Any],
        model: Any,
        tokenizer: Any,
        settings: TrainSettings,
        rows: list[dict[str, Any]],
        collate: Callable[..., Any],
    ) -> tuple[Any, Any]:
        """Train a plain `transformers.Trainer` subclass on rows of token ids, batched by
        `collate(features, pad_id=...)`: the listwise and span reward models, which TRL has no
        trainer for. Returns the trainer and the final model (see `final_model`)."""
        import datasets
        from transformers import TrainingArguments

        args = training_arguments(
            TrainingArguments, settings, self.ctx.work_dir, remove_unused_columns=False
        )
        trainer = trainer_class(
            model=model,
            args=args,
            train_dataset=datasets.Dataset.from_list(rows),
            data_collator=functools.partial(collate, pad_id=int(tokenizer.pad_token_id)),
            processing_class=tokenizer,
            callbacks=self.callbacks(),
        )
        self.train(trainer)
        return trainer, self.final_model(trainer)

    def final_model(self, trainer: Any) -> Any:
        """The trained model, whole, on the writing process (every rank must call this).

        Under FSDP the weights are sharded over the ranks: the trainer gathers them into a full
        checkpoint (a collective call), which rank 0 loads back as one model.
        """
        accelerator = trainer.accelerator
        accelerator.wait_for_everyone()
        if not getattr(trainer, "is_fsdp_enabled", False):
            return accelerator.unwrap_model(trainer.model)
        gathered = self.ctx.work_dir / "gathered"
        trainer.save_model(str(gathered))
        accelerator.wait_for_everyone()
        if not self.is_main:
            return None
        (gathered / "training_args.bin").unlink(missing_ok=True)  # a pickle: never published
        model = accelerator.unwrap_model(trainer.model)
        reloaded = type(model).from_pretrained(str(gathered))
        if torch_available_cuda():
            reloaded.to("cuda")
        return reloaded

    def publish(
        self,
        *,
        kind: str,
        config: BaseModel,
        inputs: dict[str, Any],
        metrics: dict[str, Any],
        model: Any = None,
        tokenizer: Any = None,
        lora: Lora | None = None,
        write: Callable[[ArtifactWriter], None] | None = None,
    ) -> TrainingResult:
        """Write the artifacts folder (weights, `write`'s own files, metrics, run.json) whole."""
        self.reporter.phase("save", 0.97, 1.0)
        writer = ArtifactWriter(self.out_dir)
        try:
            if model is not None:
                writer.save_model(unwrap_for_saving(model, lora), tokenizer)
            if write is not None:
                write(writer)
            metrics = {**metrics, **self.speed}
            writer.write_json(METRICS, metrics)
            record = {
                "kind": kind,
                "config": config.model_dump(mode="json"),
                "inputs": inputs,
                "metrics": {k: v for k, v in metrics.items() if not isinstance(v, list | dict)},
            }
            files = writer.commit(record)
        except BaseException:
            writer.discard()
            raise
        self.reporter.report(1.0, {"artifacts": str(self.out_dir)}, force=True)
        return TrainingResult(kind, self.out_dir, metrics, files)
