"""Sampling from and scoring completions of a model already loaded in this process.

A run's evaluation compares the trained policy with its parent while both are in memory:
samples (pure ancestral sampling: no top-k, so that log-probabilities estimate a real KL) and
the log-probability of a completion under each model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.training.scoring import Prompt, Response, as_messages, pad_batch

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True, slots=True)
class Sample:
    text: str
    token_ids: tuple[int, ...]  # generated tokens up to and including EOS
    finish_reason: str  # "stop" | "length"


def encode_prompt(tok: PreTrainedTokenizerBase, prompt: Prompt) -> list[int]:
    """What the policy is conditioned on: the text itself, or the chat template's prompt."""
    if isinstance(prompt, str):
        return list(tok(prompt)["input_ids"])
    messages = [dict(m) for m in prompt]
    out = tok.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True
    )
    return list(out["input_ids"])


def split_ids(
    tok: PreTrainedTokenizerBase, prompt: Prompt, response: Response
) -> tuple[list[int], list[int]]:
    """(prompt ids, completion ids) of a pair, as TRL's SFT tokenizes it: the whole sequence at
    once (text + EOS, or the chat template), cut where it stops matching the prompt alone."""
    if isinstance(prompt, str) and isinstance(response, str):
        eos = tok.eos_token or ""
        text = prompt + (response if response.endswith(eos) else response + eos)
        full = list(tok(text)["input_ids"])
    else:
        messages = as_messages(prompt, "user") + as_messages(response, "assistant")
        out = tok.apply_chat_template(messages, tokenize=True, return_dict=True)
        full = list(out["input_ids"])
    alone = encode_prompt(tok, prompt)
    n = 0
    while n < min(len(alone), len(full)) and alone[n] == full[n]:
        n += 1
    return full[:n], full[n:]


def _device(model: PreTrainedModel) -> Any:
    return next(model.parameters()).device


def sample(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    prompts: Sequence[Prompt],
    *,
    n: int = 1,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 64,
    seed: int = 0,
    batch_size: int = 8,
) -> list[list[Sample]]:
    """n samples per prompt (seeded: the same call gives the same samples on one machine)."""
    import torch

    eos = tok.eos_token_id
    pad = int(tok.pad_token_id if tok.pad_token_id is not None else eos)
    device = _device(model)
    was_training = model.training
    model.eval()
    out: list[list[Sample]] = []
    try:
        for start in range(0, len(prompts), batch_size):
            batch = [encode_prompt(tok, p) for p in prompts[start : start + batch_size]]
            ids, mask = pad_batch(batch, pad, left=True)
            torch.manual_seed(seed + start)
            with torch.no_grad():
                generated = model.generate(
                    input_ids=ids.to(device),
                    attention_mask=mask.to(device),
                    do_sample=True,
                    temperature=temperature,
                    top_p=top_p,
                    top_k=0,
                    max_new_tokens=max_new_tokens,
                    num_return_sequences=n,
                    pad_token_id=pad,
                    eos_token_id=eos,
                )
            new = generated[:, ids.shape[1] :].cpu().tolist()
            for i in range(len(batch)):
                group = []
                for row in new[i * n : (i + 1) * n]:
                    finish = "length"
                    if eos is not None and eos in row:
                        row = row[: row.index(eos) + 1]
                        finish = "stop"
                    text = tok.decode(row, skip_special_tokens=True)
                    group.append(Sample(text, tuple(row), finish))
                out.append(group)
    finally:
        model.train(was_training)
    return out


def completion_logprobs(
    model: PreTrainedModel,
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    *,
    pad_id: int,
    batch_size: int = 8,
) -> list[float]:
    """log p(completion | prompt), summed over the completion's tokens, for each pair."""
    import torch

    device = _device(model)
    was_training = model.training
    model.eval()
    out: list[float] = []
    try:
        for start in range(0, len(prompt_ids), batch_size):
            ps = prompt_ids[start : start + batch_size]
            cs = completion_ids[start : start + batch_size]
            rows = [list(p) + list(c) for p, c in zip(ps, cs, strict=True)]
            ids, mask = pad_batch(rows, pad_id)
            with torch.no_grad():
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            logp = torch.log_softmax(logits.float(), dim=-1).cpu()
            for i, (p, c) in enumerate(zip(ps, cs, strict=True)):
                if not c:
                    out.append(0.0)
                    continue
                # Token t is predicted at position t-1.
                positions = torch.arange(len(p) - 1, len(p) + len(c) - 1)
                targets = torch.tensor(list(c), dtype=torch.long)
                out.append(float(logp[i, positions, targets].sum()))
    finally:
        model.train(was_training)
    return out
