"""Supervised fine-tuning (TRL SFTTrainer) on critique rewrites (ILF) or on selected samples.

* rewrites: a `critique` snapshot's rows with a rewrite become (prompt, rewrite) examples:
  learning from the annotators' improved responses (ILF). With `min_rating`, responses rated at
  least that and left as they were join them.
* samples: the best samples of a best_of_n run (its artifacts folder, `samples.parquet`).

Loss is on the completion only (TRL's prompt-completion format). Held-out examples (by item or
prompt) measure the negative log-likelihood of the targets before and after, and the policy is
compared with its parent on held-out prompts (KL, length, win rate).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from pydantic import BaseModel

from app.exports.schemas import Schema
from app.training.arguments import training_arguments
from app.training.artifacts import RUN_RECORD, ArtifactWriter
from app.training.config import PolicyEval, SftConfig, TrainSettings
from app.training.errors import TrainingInputError
from app.training.loading import base_and_tokenizer, load_causal_lm, peft_config
from app.training.policy_eval import compare_policies, response_logprobs, response_of
from app.training.session import RunSession, TrainingResult, loss_curve
from app.training.snapshot import (
    Snapshot,
    read_samples,
    require_schema,
    split_by,
    unique_prompts,
)


def rewrite_examples(snapshot: Snapshot, min_rating: int | None) -> pa.Table:
    """(prompt, completion, item_id) from a critique snapshot."""
    require_schema(snapshot, "sft on rewrites", Schema.critique)
    rows = snapshot.read(["prompt", "response", "rewrite", "rating", "item_id"]).to_pylist()
    out = []
    for r in rows:
        rewrite = (r["rewrite"] or "").strip()
        target = None
        if rewrite and rewrite != r["response"].strip():
            target = r["rewrite"]
        elif min_rating is not None and r["rating"] is not None and r["rating"] >= min_rating:
            target = r["response"]
        if target is not None:
            out.append({"prompt": r["prompt"], "completion": target, "item_id": r["item_id"]})
    if not out:
        why = " or responses rated at least min_rating" if min_rating is not None else ""
        raise TrainingInputError(f"the critique snapshot has no rewrites{why} to train on.")
    return pa.Table.from_pylist(out)


def sample_examples(folder: Path) -> tuple[pa.Table, dict[str, Any]]:
    """(prompt, completion, prompt_id) of the samples a best_of_n run kept, and its run record."""
    table = read_samples(folder)
    kept = table.filter(table.column("best"))
    if kept.num_rows == 0:
        raise TrainingInputError(f"{folder}/samples.parquet marks no sample as best.")
    record_path = folder / RUN_RECORD
    record = orjson.loads(record_path.read_bytes()) if record_path.is_file() else {}
    return sft_rows(kept.select(["prompt", "completion", "prompt_id"])), record


def sft_rows(samples: pa.Table) -> pa.Table:
    """Sampled texts as SFT targets: chat prompts get the text as the assistant's message
    (TRL's conversational prompt-completion format), text prompts keep it as text."""
    rows = samples.to_pylist()
    for row in rows:
        row["completion"] = response_of(row["prompt"], row["completion"])
    return pa.Table.from_pylist(rows)


def heldout_nll(model: Any, tok: Any, rows: list[dict[str, Any]]) -> float:
    """Mean negative log-likelihood per target token of held-out completions."""
    logps, lengths = response_logprobs(
        model, tok, [r["prompt"] for r in rows], [r["completion"] for r in rows]
    )
    return -sum(logps) / max(1, sum(lengths))


def train_sft(
    settings: TrainSettings,
    evaluation: PolicyEval,
    train_rows: pa.Table,
    held: list[dict[str, Any]],
    eval_prompts: list[Any],
    session: RunSession,
    *,
    record: BaseModel,
    inputs: dict[str, Any],
    kind: str = "sft",
    phase: tuple[float, float] = (0.0, 0.85),
    metrics: dict[str, Any] | None = None,
    write: Callable[[ArtifactWriter], None] | None = None,
) -> TrainingResult:
    """Fine-tune `settings.base_model` on (prompt, completion) rows; `held` rows (same
    columns) measure the target NLL, `eval_prompts` the comparison with the parent."""
    import datasets
    from trl import SFTConfig as TrlSftConfig
    from trl import SFTTrainer

    _, tok = base_and_tokenizer(settings)
    session.reporter.phase("train", *phase)
    policy = load_causal_lm(settings.base_model, tok, settings.precision, "base model")
    args = training_arguments(
        TrlSftConfig,
        settings,
        session.ctx.work_dir,
        max_length=settings.max_length,
        completion_only_loss=True,
        packing=False,
    )
    trainer = SFTTrainer(
        model=policy,
        args=args,
        train_dataset=datasets.Dataset(train_rows.select(["prompt", "completion"])),
        processing_class=tok,
        peft_config=peft_config(settings.lora, "CAUSAL_LM"),
        callbacks=session.callbacks(),
    )
    session.train(trainer)
    final = session.final_model(trainer)
    if not session.is_main:
        return TrainingResult(kind, None, {})

    session.reporter.phase("evaluate", phase[1], 0.97)
    parent = load_causal_lm(settings.base_model, tok, settings.precision, "base model")
    parent.to(next(final.parameters()).device)
    out: dict[str, Any] = {
        **(metrics or {}),
        "train_examples": train_rows.num_rows,
        "steps": trainer.state.global_step,
        "loss_curve": loss_curve(trainer),
    }
    if held:
        out |= {
            "heldout_examples": len(held),
            "heldout_nll": heldout_nll(final, tok, held),
            "heldout_nll_parent": heldout_nll(parent, tok, held),
        }
    if eval_prompts:
        out |= compare_policies(
            final,
            parent,
            tok,
            eval_prompts,
            evaluation,
            seed=settings.seed,
            max_length=settings.max_length,
            progress=lambda f: session.reporter.report(f),
        )
    return session.publish(
        kind=kind,
        config=record,
        inputs=inputs,
        metrics=out,
        model=final,
        tokenizer=tok,
        lora=settings.lora,
        write=write,
    )


def _train_on_examples(
    config: SftConfig, examples: pa.Table, key: str, session: RunSession, inputs: dict[str, Any]
) -> TrainingResult:
    train_rows, held_rows = split_by(examples, key, config.eval_fraction, config.seed)
    held = held_rows.to_pylist()
    return train_sft(
        config,
        config.evaluation,
        train_rows,
        held,
        unique_prompts(held),
        session,
        record=config,
        inputs=inputs,
    )


def train_sft_on_rewrites(
    config: SftConfig, snapshot: Snapshot, session: RunSession
) -> TrainingResult:
    examples = rewrite_examples(snapshot, config.min_rating)
    inputs = {"snapshot": snapshot.provenance(), "base_model": config.base_model}
    return _train_on_examples(config, examples, "item_id", session, inputs)


def train_sft_on_samples(config: SftConfig, folder: Path, session: RunSession) -> TrainingResult:
    examples, record = sample_examples(Path(folder))
    inputs = {
        "samples": {"folder": str(folder), "run": record.get("inputs"), "kind": record.get("kind")},
        "base_model": config.base_model,
    }
    return _train_on_examples(config, examples, "prompt_id", session, inputs)
