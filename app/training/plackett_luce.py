"""Listwise reward model: the Plackett-Luce likelihood of each item's aggregated order.

An order y_1 > y_2 > ... > y_k of one prompt's responses has probability
    prod_i exp(s_i) / sum_{j >= i} exp(s_j)
under scores s from the reward model (ListMLE; LiPO's listwise view). For k = 2 this is exactly
Bradley-Terry, so pairwise and listwise rewards live on the same scale. Each training example is
one item: all its responses are scored in one batch, best first.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from statistics import fmean
from typing import TYPE_CHECKING, Any

from app.training.config import RewardModelConfig
from app.training.errors import TrainingInputError
from app.training.loading import (
    base_and_tokenizer,
    disable_dropout,
    load_model,
    match_tokenizer,
    with_lora,
)
from app.training.scoring import encode_scored, pad_batch, score_pairs
from app.training.session import RunSession, TrainingResult, loss_curve
from app.training.snapshot import Snapshot, split_by

if TYPE_CHECKING:
    import torch

RANKING_COLUMNS = ["prompt", "responses", "order", "item_id"]
# Stands for "no response here" in a padded group: finite, so no NaN reaches the gradient.
_PAD_SCORE = -1e4


def plackett_luce_nll(scores: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """Mean over groups of -log P(order); `scores` holds each group's responses best first."""
    import torch

    groups = torch.split(scores, list(sizes))
    width = max(sizes)
    padded = torch.stack(
        [torch.nn.functional.pad(g, (0, width - len(g)), value=_PAD_SCORE) for g in groups]
    )
    mask = (
        torch.arange(width, device=scores.device)[None, :]
        < torch.tensor(list(sizes), device=scores.device)[:, None]
    )
    # log sum_{j >= i} exp(s_j): a cumulative log-sum-exp from the end of each group.
    tail = torch.logcumsumexp(padded.flip(-1), dim=-1).flip(-1)
    nll = ((tail - padded) * mask).sum(-1)
    return nll.mean()


def collate(rows: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    """All responses of the batch's items, flattened best first, and the group sizes."""
    import torch

    flat = [ids for row in rows for ids in row["ranked_ids"]]
    input_ids, attention_mask = pad_batch(flat, pad_id)
    sizes = torch.tensor([len(row["ranked_ids"]) for row in rows], dtype=torch.long)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "group_sizes": sizes}


@functools.cache
def trainer_class() -> type[Any]:
    from transformers import Trainer

    class PlackettLuceTrainer(Trainer):  # type: ignore[misc]
        """A Trainer whose loss is the Plackett-Luce NLL of whole orders."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.loss_is_scaled_for_ga = False  # a per-batch mean: divided by the GA steps

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            sizes = inputs.pop("group_sizes").tolist()
            outputs = model(
                input_ids=inputs["input_ids"],
                attention_mask=inputs["attention_mask"],
                use_cache=False,
            )
            loss = plackett_luce_nll(outputs.logits[:, 0].float(), sizes)
            return (loss, outputs) if return_outputs else loss

    return PlackettLuceTrainer


def ranking_metrics(scores: list[list[float]]) -> dict[str, float]:
    """Each held-out item's scores, best first by the annotators: pair accuracy, top-1, margin."""
    correct: list[float] = []
    margins: list[float] = []
    top1: list[float] = []
    for group in scores:
        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                correct.append(1.0 if group[i] > group[j] else 0.0)
                margins.append(group[i] - group[j])
        top1.append(1.0 if max(range(len(group)), key=group.__getitem__) == 0 else 0.0)
    return {
        "heldout_pairs": len(correct),
        "heldout_accuracy": fmean(correct),
        "heldout_reward_margin": fmean(margins),
        "heldout_top1_accuracy": fmean(top1),
    }


def train_plackett_luce(
    config: RewardModelConfig, snapshot: Snapshot, session: RunSession
) -> TrainingResult:
    from transformers import AutoModelForSequenceClassification

    table = snapshot.read(RANKING_COLUMNS)
    rows = [r for r in table.to_pylist() if r["order"] and len(r["order"]) >= 2]
    if not rows:
        raise TrainingInputError("the ranking snapshot has no ordered items to train on.")
    _, held_rows = split_by(table, "item_id", config.eval_fraction, config.seed)
    held_ids = set(held_rows.column("item_id").to_pylist())

    source, tok = base_and_tokenizer(config)
    session.reporter.phase("train", 0.0, 0.9)
    model = load_model(
        AutoModelForSequenceClassification,
        source,
        config.precision,
        num_labels=1,
    )
    match_tokenizer(model, tok)
    disable_dropout(model)
    model = with_lora(model, config.lora, "SEQ_CLS")

    def ranked(row: dict[str, Any]) -> list[list[int]]:
        return [
            encode_scored(tok, row["prompt"], row["responses"][i], config.max_length)
            for i in row["order"]
        ]

    train = [{"ranked_ids": ranked(r)} for r in rows if r["item_id"] not in held_ids]
    trainer, final = session.fit_rows(trainer_class(), model, tok, config, train, collate)
    if not session.is_main:
        return TrainingResult("reward_model", None, {})

    session.reporter.phase("evaluate", 0.9, 0.97)
    metrics: dict[str, Any] = {
        "objective": "plackett_luce",
        "train_items": len(train),
        "steps": trainer.state.global_step,
        "loss_curve": loss_curve(trainer),
    }
    held = [r for r in rows if r["item_id"] in held_ids]
    if held:
        scores = []
        for r in held:
            ordered = [r["responses"][i] for i in r["order"]]
            scores.append(
                score_pairs(
                    final, tok, [r["prompt"]] * len(ordered), ordered, max_length=config.max_length
                )
            )
        metrics |= ranking_metrics(scores)
        metrics["heldout_items"] = len(held)
    return session.publish(
        kind="reward_model",
        config=config,
        inputs={"snapshot": snapshot.provenance(), "base_model": config.base_model},
        metrics=metrics,
        model=final,
        tokenizer=tok,
        lora=config.lora,
    )
