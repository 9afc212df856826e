"""How a trained policy compares with its parent on held-out prompts.

Both policies sample one completion per prompt. KL(policy || parent) is estimated from the
policy's own samples as the mean of log p_policy(y) - log p_parent(y) (an unbiased Monte Carlo
estimate per sequence); lengths are in tokens; with a reward model, the win rate is the share of
prompts where the policy's sample scores higher than the parent's (a tie counts half).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from statistics import fmean
from typing import TYPE_CHECKING, Any

from app.training.config import PolicyEval
from app.training.generation import completion_logprobs, encode_prompt, sample, split_ids
from app.training.scoring import Prompt, Response, RewardScorer

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def response_of(prompt: Prompt, text: str) -> Any:
    """A sampled text as the reward model reads it: text, or an assistant message."""
    return text if isinstance(prompt, str) else [{"role": "assistant", "content": text}]


def response_logprobs(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    prompts: Sequence[Prompt],
    responses: Sequence[Response],
) -> tuple[list[float], list[int]]:
    """log p(response | prompt) under `model`, and each response's length in tokens."""
    split = [split_ids(tok, p, r) for p, r in zip(prompts, responses, strict=True)]
    logps = completion_logprobs(
        model, [p for p, _ in split], [c for _, c in split], pad_id=int(tok.pad_token_id)
    )
    return logps, [len(c) for _, c in split]


def win_rate(new: Sequence[float], old: Sequence[float]) -> float:
    wins = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(new, old, strict=True)]
    return fmean(wins) if wins else float("nan")


def compare_policies(
    policy: PreTrainedModel,
    parent: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    prompts: Sequence[Prompt],
    settings: PolicyEval,
    *,
    seed: int,
    max_length: int,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    prompts = list(prompts)[: settings.prompts]
    if not prompts:
        return {}
    pad = int(tok.pad_token_id)

    def draw(model: PreTrainedModel) -> list[Any]:
        groups = sample(
            model,
            tok,
            prompts,
            temperature=settings.temperature,
            max_new_tokens=settings.max_new_tokens,
            seed=seed,
        )
        return [g[0] for g in groups]

    new = draw(policy)
    if progress:
        progress(0.3)
    old = draw(parent)
    if progress:
        progress(0.6)
    prompt_ids = [encode_prompt(tok, p) for p in prompts]
    completions = [list(s.token_ids) for s in new]
    logp_new = completion_logprobs(policy, prompt_ids, completions, pad_id=pad)
    logp_old = completion_logprobs(parent, prompt_ids, completions, pad_id=pad)
    out: dict[str, Any] = {
        "eval_prompts": len(prompts),
        "kl_to_parent": fmean(a - b for a, b in zip(logp_new, logp_old, strict=True)),
        "mean_length": fmean(len(s.token_ids) for s in new),
        "parent_mean_length": fmean(len(s.token_ids) for s in old),
    }
    if settings.reward_model is not None:
        scorer = RewardScorer(settings.reward_model, max_length=max_length)
        try:
            new_scores = scorer.score(
                prompts, [response_of(p, s.text) for p, s in zip(prompts, new, strict=True)]
            )
            old_scores = scorer.score(
                prompts, [response_of(p, s.text) for p, s in zip(prompts, old, strict=True)]
            )
        finally:
            scorer.close()
        out |= {
            "win_rate_vs_parent": win_rate(new_scores, old_scores),
            "mean_reward": fmean(new_scores),
            "parent_mean_reward": fmean(old_scores),
        }
    if progress:
        progress(1.0)
    return out
