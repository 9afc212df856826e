"""Reward-model scores of (prompt, response) pairs, tokenized exactly as TRL's RewardTrainer does.

A standard-style row is scored on `prompt + response + EOS`, a conversational one on the chat
template applied to the prompt messages plus the response as the assistant's message, so that a
score here is the score the model was trained to give.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from app.training.config import Precision

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Prompt = str | Sequence[Mapping[str, Any]]  # text, or chat messages [{role, content}]
Response = str | Sequence[Mapping[str, Any]]


def as_messages(value: Response, role: str) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return [dict(m) for m in value]


def encode_scored(
    tok: PreTrainedTokenizerBase, prompt: Prompt, response: Response, max_length: int
) -> list[int]:
    """Token ids the reward model reads for one pair (the first max_length of them)."""
    if isinstance(prompt, str) and isinstance(response, str):
        eos = tok.eos_token or ""
        text = prompt + (response if response.endswith(eos) else response + eos)
        ids = list(tok(text)["input_ids"])
    else:
        messages = as_messages(prompt, "user") + as_messages(response, "assistant")
        ids = list(tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
    return ids[:max_length]


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int, *, left: bool = False) -> tuple[Any, Any]:
    """(input_ids, attention_mask) as tensors, padded on the right (or the left)."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if not r:
            continue
        row = torch.tensor(list(r), dtype=torch.long)
        if left:
            ids[i, width - len(r) :], mask[i, width - len(r) :] = row, 1
        else:
            ids[i, : len(r)], mask[i, : len(r)] = row, 1
    return ids, mask


def score_ids(
    model: PreTrainedModel, rows: Sequence[Sequence[int]], pad_id: int, batch_size: int = 16
) -> list[float]:
    """The scalar output of a sequence-classification model for each token-id row."""
    import torch

    out: list[float] = []
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(rows), batch_size):
                ids, mask = pad_batch(rows[start : start + batch_size], pad_id)
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
                out += [float(x) for x in logits[:, 0].float().cpu()]
    finally:
        model.train(was_training)
    return out


def score_pairs(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    prompts: Sequence[Prompt],
    responses: Sequence[Response],
    *,
    max_length: int,
    batch_size: int = 16,
) -> list[float]:
    rows = [encode_scored(tok, p, r, max_length) for p, r in zip(prompts, responses, strict=True)]
    return score_ids(model, rows, int(tok.pad_token_id), batch_size)


class RewardScorer:
    """A saved reward model (folder or GGUF), loaded once, scoring many pairs."""

    def __init__(
        self, path: str, *, max_length: int, precision: Precision = Precision.auto
    ) -> None:
        from transformers import AutoModelForSequenceClassification

        from app.training.loading import (
            load_model,
            load_tokenizer,
            match_tokenizer,
            resolve_model,
        )

        source = resolve_model(path, "reward model")
        self.tokenizer = load_tokenizer(source)
        self.model = load_model(AutoModelForSequenceClassification, source, precision)
        if getattr(self.model.config, "num_labels", 1) != 1:
            from app.training.errors import ModelNotFound

            raise ModelNotFound(
                f"{path} is not a scalar reward model (it has {self.model.config.num_labels}"
                " outputs); give a reward_model trained on preference or ranking data."
            )
        match_tokenizer(self.model, self.tokenizer)
        self.max_length = max_length
        import torch

        if torch.cuda.is_available():
            self.model.to("cuda")

    def score(self, prompts: Sequence[Prompt], responses: Sequence[Response]) -> list[float]:
        return score_pairs(
            self.model, self.tokenizer, prompts, responses, max_length=self.max_length
        )

    def close(self) -> None:
        del self.model
        import gc

        gc.collect()
