"""Fine-grained reward model: per-label token classification from a `spans` snapshot.

Each token of a response gets, for every span label of the project, the probability that
annotators would mark it with that label (several labels may overlap: one sigmoid per label,
not a softmax). A response's score for a label is the expected share of its tokens so marked,
which gives one reward per label (Fine-Grained RLHF's dense, per-type rewards). The prompt is
read as context but never labelled. Span offsets are Unicode code points, as the export writes
them, and a fast tokenizer's offsets are code points too.
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
from app.training.scoring import pad_batch
from app.training.session import RunSession, TrainingResult, loss_curve
from app.training.snapshot import Snapshot, split_by

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

SPAN_COLUMNS = ["prompt", "response", "labels", "spans", "item_id"]
IGNORE = -100  # prompt and special tokens: read, never labelled


def encode_with_targets(
    tok: PreTrainedTokenizerBase,
    prompt: str,
    response: str,
    spans: Sequence[dict[str, Any]],
    labels: Sequence[str],
    max_length: int,
) -> tuple[list[int], list[list[int]]]:
    """Token ids of (prompt, response); per token a 0/1 per label (IGNORE outside the response)."""
    enc = tok(
        prompt,
        response,
        return_offsets_mapping=True,
        truncation="longest_first",
        max_length=max_length,
    )
    sequence_ids = enc.sequence_ids()
    index = {label: k for k, label in enumerate(labels)}
    targets: list[list[int]] = []
    for (start, end), seq in zip(enc["offset_mapping"], sequence_ids, strict=True):
        if seq != 1 or end <= start:
            targets.append([IGNORE] * len(labels))
            continue
        row = [0] * len(labels)
        for span in spans:
            k = index.get(span["label"])
            if k is not None and span["start"] < end and start < span["end"]:
                row[k] = 1
        targets.append(row)
    return list(enc["input_ids"]), targets


def collate(rows: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    import torch

    input_ids, attention_mask = pad_batch([r["input_ids"] for r in rows], pad_id)
    n_labels = len(rows[0]["targets"][0])
    targets = torch.full((len(rows), input_ids.shape[1], n_labels), IGNORE, dtype=torch.float)
    for i, r in enumerate(rows):
        targets[i, : len(r["targets"])] = torch.tensor(r["targets"], dtype=torch.float)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "span_targets": targets}


def span_loss(logits: Any, targets: Any) -> Any:
    """Binary cross-entropy per (token, label), averaged over the labelled ones."""
    import torch

    mask = targets != IGNORE
    losses = torch.nn.functional.binary_cross_entropy_with_logits(
        logits.float(), targets.clamp(min=0), reduction="none"
    )
    return (losses * mask).sum() / mask.sum().clamp(min=1)


@functools.cache
def trainer_class() -> type[Any]:
    from transformers import Trainer

    class SpanRewardTrainer(Trainer):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.loss_is_scaled_for_ga = False

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            targets = inputs.pop("span_targets")
            outputs = model(**inputs, use_cache=False)
            loss = span_loss(outputs.logits, targets)
            return (loss, outputs) if return_outputs else loss

    return SpanRewardTrainer


def token_probabilities(
    model: PreTrainedModel, rows: list[dict[str, Any]], pad_id: int, batch_size: int = 16
) -> list[list[list[float]]]:
    """Per row, per token, per label: the probability of the mark."""
    import torch

    out: list[list[list[float]]] = []
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            ids, mask = pad_batch([r["input_ids"] for r in batch], pad_id)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            probs = torch.sigmoid(logits.float()).cpu()
            out += [probs[i, : len(r["input_ids"])].tolist() for i, r in enumerate(batch)]
    return out


def span_scores(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    max_length: int,
) -> list[dict[str, float]]:
    """One reward per label and response: the expected share of its tokens marked so."""
    labels = [model.config.id2label[k] for k in range(model.config.num_labels)]
    rows: list[dict[str, Any]] = []
    for prompt, response in zip(prompts, responses, strict=True):
        ids, targets = encode_with_targets(tok, prompt, response, [], labels, max_length)
        rows.append({"input_ids": ids, "targets": targets})
    probs = token_probabilities(model, rows, int(tok.pad_token_id))
    out = []
    for row, row_probs in zip(rows, probs, strict=True):
        inside = [
            t for t, target in zip(row_probs, row["targets"], strict=True) if target[0] != IGNORE
        ]
        out.append(
            {
                label: fmean(t[k] for t in inside) if inside else 0.0
                for k, label in enumerate(labels)
            }
        )
    return out


def token_f1(
    probs: list[list[list[float]]],
    rows: list[dict[str, Any]],
    labels: Sequence[str],
    threshold: float,
) -> dict[str, Any]:
    """Per-label precision, recall and F1 of the marked tokens, and their macro mean."""
    per_label: dict[str, dict[str, float]] = {}
    for k, label in enumerate(labels):
        tp = fp = fn = 0
        for p, row in zip(probs, rows, strict=True):
            for t, target in zip(p, row["targets"], strict=True):
                if target[k] == IGNORE:
                    continue
                predicted = t[k] >= threshold
                tp += int(predicted and target[k] == 1)
                fp += int(predicted and target[k] == 0)
                fn += int(not predicted and target[k] == 1)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "marked_tokens": tp + fn,
        }
    marked = [v["f1"] for v in per_label.values() if v["marked_tokens"]]
    return {
        "heldout_token_f1": per_label,
        "heldout_macro_f1": fmean(marked) if marked else 0.0,
    }


def train_span_rewards(
    config: RewardModelConfig, snapshot: Snapshot, session: RunSession
) -> TrainingResult:
    from transformers import AutoModelForTokenClassification

    table = snapshot.read(SPAN_COLUMNS)
    if table.num_rows == 0:
        raise TrainingInputError("the spans snapshot has no responses to train on.")
    labels: list[str] = []
    for row_labels in table.column("labels").to_pylist():
        labels += [label for label in row_labels or [] if label not in labels]
    if not labels:
        raise TrainingInputError("the spans snapshot names no span labels.")
    source, tok = base_and_tokenizer(config)
    if not tok.is_fast:
        raise TrainingInputError(
            "span rewards need a fast tokenizer (tokenizer.json) to map tokens to characters."
        )
    _, held_table = split_by(table, "item_id", config.eval_fraction, config.seed)
    held_ids = set(held_table.column("item_id").to_pylist())
    train: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    for r in table.to_pylist():
        ids, targets = encode_with_targets(
            tok, r["prompt"], r["response"], r["spans"] or [], labels, config.max_length
        )
        (held if r["item_id"] in held_ids else train).append({"input_ids": ids, "targets": targets})

    session.reporter.phase("train", 0.0, 0.9)
    model = load_model(
        AutoModelForTokenClassification,
        source,
        config.precision,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: k for k, label in enumerate(labels)},
        problem_type="multi_label_classification",
    )
    match_tokenizer(model, tok)
    disable_dropout(model)
    model = with_lora(model, config.lora, "TOKEN_CLS")
    trainer, final = session.fit_rows(trainer_class(), model, tok, config, train, collate)
    if not session.is_main:
        return TrainingResult("reward_model", None, {})

    session.reporter.phase("evaluate", 0.9, 0.97)
    metrics: dict[str, Any] = {
        "objective": "span_token_classification",
        "labels": labels,
        "train_responses": len(train),
        "steps": trainer.state.global_step,
        "loss_curve": loss_curve(trainer),
    }
    if held:
        probs = token_probabilities(final, held, int(tok.pad_token_id))
        metrics |= token_f1(probs, held, labels, config.span_threshold)
        metrics["heldout_responses"] = len(held)
    return session.publish(
        kind="reward_model",
        config=config,
        inputs={"snapshot": snapshot.provenance(), "base_model": config.base_model},
        metrics=metrics,
        model=final,
        tokenizer=tok,
        lora=config.lora,
    )
