"""Direct preference optimisation (TRL DPOTrainer) of a policy on a `preference` snapshot.

Ranking projects come in through the same schema: the export's `pairs=` option expands each
aggregated order into pairs. The reference is the base model (or `reference_model`); with
LoRA, TRL uses the base weights with the adapters switched off, so no second copy is loaded.
Held-out pairs (by item) measure what DPO optimises: the chosen-vs-rejected log-ratio of the
policy against the reference's.
"""

from __future__ import annotations

from statistics import fmean
from typing import Any

from app.exports.schemas import Schema
from app.training.arguments import training_arguments
from app.training.config import DpoConfig
from app.training.errors import TrainingInputError
from app.training.loading import base_and_tokenizer, load_causal_lm, peft_config, resolve_model
from app.training.policy_eval import compare_policies, response_logprobs
from app.training.session import RunSession, TrainingResult, loss_curve
from app.training.snapshot import Snapshot, require_schema, split_by, unique_prompts

PAIR_COLUMNS = ["prompt", "chosen", "rejected", "item_id"]


def logratio_metrics(
    policy: Any, reference: Any, tok: Any, rows: list[dict[str, Any]], beta: float
) -> dict[str, float]:
    """Mean log p(chosen) - log p(rejected) under both models, and DPO's implicit reward."""
    prompts = [r["prompt"] for r in rows]
    chosen, rejected = [r["chosen"] for r in rows], [r["rejected"] for r in rows]
    pc, _ = response_logprobs(policy, tok, prompts, chosen)
    pr, _ = response_logprobs(policy, tok, prompts, rejected)
    rc, _ = response_logprobs(reference, tok, prompts, chosen)
    rr, _ = response_logprobs(reference, tok, prompts, rejected)
    policy_ratio = [c - r for c, r in zip(pc, pr, strict=True)]
    reference_ratio = [c - r for c, r in zip(rc, rr, strict=True)]
    gains = [p - r for p, r in zip(policy_ratio, reference_ratio, strict=True)]
    return {
        "heldout_pairs": len(rows),
        "heldout_logratio_policy": fmean(policy_ratio),
        "heldout_logratio_reference": fmean(reference_ratio),
        "heldout_reward_margin": beta * fmean(gains),
        "heldout_reward_accuracy": fmean(1.0 if g > 0 else 0.0 for g in gains),
    }


def train_dpo(config: DpoConfig, snapshot: Snapshot, session: RunSession) -> TrainingResult:
    import datasets
    from trl import DPOConfig as TrlDpoConfig
    from trl import DPOTrainer

    require_schema(snapshot, "dpo", Schema.preference)
    table = snapshot.read(PAIR_COLUMNS)
    if table.num_rows == 0:
        raise TrainingInputError("the preference snapshot has no pairs to train on.")
    train_rows, held_rows = split_by(table, "item_id", config.eval_fraction, config.seed)
    reference_path = config.reference_model or config.base_model
    resolve_model(reference_path, "reference model")  # a missing model fails before training

    _, tok = base_and_tokenizer(config)
    session.reporter.phase("train", 0.0, 0.85)
    policy = load_causal_lm(config.base_model, tok, config.precision, "base model")
    reference = None
    if config.lora is None or config.reference_model is not None:
        reference = load_causal_lm(reference_path, tok, config.precision, "reference model")
    args = training_arguments(
        TrlDpoConfig,
        config,
        session.ctx.work_dir,
        beta=config.beta,
        loss_type=[config.loss_type],
        label_smoothing=config.label_smoothing,
        max_length=config.max_length,
    )
    trainer = DPOTrainer(
        model=policy,
        ref_model=reference,
        args=args,
        train_dataset=datasets.Dataset(train_rows.select(["prompt", "chosen", "rejected"])),
        processing_class=tok,
        peft_config=peft_config(config.lora, "CAUSAL_LM"),
        callbacks=session.callbacks(),
    )
    session.train(trainer)
    final = session.final_model(trainer)
    if not session.is_main:
        return TrainingResult("dpo", None, {})

    session.reporter.phase("evaluate", 0.85, 0.97)
    parent = load_causal_lm(reference_path, tok, config.precision, "reference model")
    parent.to(next(final.parameters()).device)
    metrics: dict[str, Any] = {
        "train_pairs": train_rows.num_rows,
        "steps": trainer.state.global_step,
        "loss_curve": loss_curve(trainer),
    }
    held = held_rows.to_pylist()
    if held:
        metrics |= logratio_metrics(final, parent, tok, held, config.beta)
        metrics |= compare_policies(
            final,
            parent,
            tok,
            unique_prompts(held),
            config.evaluation,
            seed=config.seed,
            max_length=config.max_length,
            progress=lambda f: session.reporter.report(f),
        )
    return session.publish(
        kind="dpo",
        config=config,
        inputs={
            "snapshot": snapshot.provenance(),
            "base_model": config.base_model,
            "reference_model": reference_path,
        },
        metrics=metrics,
        model=final,
        tokenizer=tok,
        lora=config.lora,
    )
