"""Reward models: the objective follows the snapshot's schema.

* `preference` (pairs): Bradley-Terry with TRL's RewardTrainer;
* `ranking` (whole orders): listwise Plackett-Luce (`app.training.plackett_luce`);
* `spans` (labelled spans): one token classifier per label (`app.training.span_rewards`).

Held-out items (never single votes) measure the result: pairwise accuracy and reward margin for
the first two, per-label token F1 for spans.
"""

from __future__ import annotations

from statistics import fmean
from typing import Any

from app.exports.schemas import Schema
from app.training.arguments import training_arguments
from app.training.config import RewardModelConfig
from app.training.errors import TrainingInputError
from app.training.loading import (
    base_and_tokenizer,
    load_model,
    match_tokenizer,
    peft_config,
)
from app.training.scoring import score_pairs
from app.training.session import RunSession, TrainingResult, loss_curve
from app.training.snapshot import Snapshot, require_schema, split_by

PAIR_COLUMNS = ["prompt", "chosen", "rejected", "item_id"]


def train_reward_model(
    config: RewardModelConfig, snapshot: Snapshot, session: RunSession
) -> TrainingResult:
    require_schema(snapshot, "reward_model", Schema.preference, Schema.ranking, Schema.spans)
    if snapshot.schema is Schema.ranking:
        from app.training.plackett_luce import train_plackett_luce

        return train_plackett_luce(config, snapshot, session)
    if snapshot.schema is Schema.spans:
        from app.training.span_rewards import train_span_rewards

        return train_span_rewards(config, snapshot, session)
    return train_bradley_terry(config, snapshot, session)


def pairwise_metrics(chosen: list[float], rejected: list[float]) -> dict[str, float]:
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    return {
        "heldout_pairs": len(margins),
        "heldout_accuracy": fmean(1.0 if m > 0 else 0.0 for m in margins),
        "heldout_reward_margin": fmean(margins),
    }


def train_bradley_terry(
    config: RewardModelConfig, snapshot: Snapshot, session: RunSession
) -> TrainingResult:
    import datasets
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    table = snapshot.read(PAIR_COLUMNS)
    if table.num_rows == 0:
        raise TrainingInputError("the preference snapshot has no pairs to train on.")
    train_rows, held_rows = split_by(table, "item_id", config.eval_fraction, config.seed)

    source, tok = base_and_tokenizer(config)
    session.reporter.phase("train", 0.0, 0.9)
    model = load_model(AutoModelForSequenceClassification, source, config.precision, num_labels=1)
    match_tokenizer(model, tok)

    train_ds = datasets.Dataset(train_rows.select(["prompt", "chosen", "rejected"]))
    args = training_arguments(
        RewardConfig,
        config,
        session.ctx.work_dir,
        max_length=config.max_length,
        center_rewards_coefficient=config.center_rewards_coefficient,
        disable_dropout=True,
    )
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        processing_class=tok,
        peft_config=peft_config(config.lora, "SEQ_CLS"),
        callbacks=session.callbacks(),
    )
    session.train(trainer)
    final = session.final_model(trainer)
    if not session.is_main:
        return TrainingResult("reward_model", None, {})

    session.reporter.phase("evaluate", 0.9, 0.97)
    metrics: dict[str, Any] = {
        "objective": "bradley_terry",
        "train_pairs": train_rows.num_rows,
        "train_pairs_used": trainer.train_dataset.num_rows,  # TRL drops pairs over max_length
        "steps": trainer.state.global_step,
        "loss_curve": loss_curve(trainer),
    }
    if held_rows.num_rows:
        held = held_rows.to_pylist()
        prompts = [r["prompt"] for r in held]
        chosen = score_pairs(
            final, tok, prompts, [r["chosen"] for r in held], max_length=config.max_length
        )
        rejected = score_pairs(
            final, tok, prompts, [r["rejected"] for r in held], max_length=config.max_length
        )
        metrics |= pairwise_metrics(chosen, rejected)
        metrics["heldout_items"] = len({r["item_id"] for r in held})

    return session.publish(
        kind="reward_model",
        config=config,
        inputs={"snapshot": snapshot.provenance(), "base_model": config.base_model},
        metrics=metrics,
        model=final,
        tokenizer=tok,
        lora=config.lora,
    )
