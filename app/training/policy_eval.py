"""How a trained policy compares with its parent on held-out prompts.

Both policies sample one completion per prompt. KL(policy || parent) is estimated from the
policy's own samples as the mean of log p_policy(y) - log p_parent(y) (an unbiased Monte Carlo
estimate per sequence); lengths are in tokens; with a reward model, the win rate is the share of
prompts where the policy's sample scores higher than the parent's (a tie counts half). With a
judge (`judge_win_rate`, also what a loop's evaluation calls), each pair is asked in both orders
with the judge's pairwise template: a consistent answer is a win or a loss, a tie or two
answers that disagree count half, and an answer that cannot be read is left out (counted).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from statistics import fmean
from typing import TYPE_CHECKING, Any

from app.training.config import JudgeSpec, PolicyEval
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


def prompt_text(prompt: Prompt) -> str:
    """A prompt as a judge's template shows it: the text, or the chat's messages in order."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in prompt)


def judge_win_rate(
    spec: JudgeSpec,
    prompts: Sequence[Prompt],
    new: Sequence[str],
    old: Sequence[str],
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """How often `spec`'s judge prefers `new[i]` to `old[i]` for `prompts[i]` (both orders).

    Returns `judge_win_rate` (None when no answer could be read), `judge_pairs`,
    `judge_unparsed`, `judge_inconsistent`, `judge_ties` and the judge's id, template and
    model. Raises app.inference.base.BackendError when the backend fails.
    """
    from app.inference import registry
    from app.judges.config import judge_config
    from app.judges.judging import Costs, ItemView, TemplateView, judge_chunk
    from app.projects.rules import TaskKind, TaskRules

    config = judge_config(spec.backend, spec.params)
    t = spec.template
    template = TemplateView(t.id or 0, t.version or 0, t.system, t.user, t.inconsistent)
    # Ties are allowed so that an "inconsistent: tie" template may say so.
    rules = TaskRules(0, TaskKind.pairwise, (), (), True, 0)
    sampling = config.sampling_for("pairwise")
    if sampling.seed is None:
        sampling = dataclasses.replace(sampling, seed=seed)
    items = [
        # Response ids 2i+1 (the policy's) and 2i+2 (the parent's), shown in both orders.
        ItemView(
            i + 1,
            f"policy-eval-{i}",
            prompt_text(p),
            {},
            [2 * i + 1, 2 * i + 2],
            [None, None],
            [a, b],
        )
        for i, (p, a, b) in enumerate(zip(prompts, new, old, strict=True))
    ]
    scores: list[float] = []
    unparsed = inconsistent = ties = 0
    model = ""
    backend = registry.create(spec.backend, spec.model, config.backend)
    try:
        for start in range(0, len(items), config.chunk_size):
            chunk = items[start : start + config.chunk_size]
            for item, judged in zip(
                chunk,
                judge_chunk(backend, chunk, rules, spec.guidelines, template, sampling, Costs()),
                strict=True,
            ):
                model = judged.model
                parsed = judged.parsed
                if parsed.status == "parsed" and parsed.payload is not None:
                    preferred = parsed.payload.get("preferred")
                    ties += preferred is None
                    scores.append(
                        0.5 if preferred is None else float(preferred == item.response_ids[0])
                    )
                elif parsed.status == "inconsistent":
                    inconsistent += 1  # the answer followed the position, not the text
                    scores.append(0.5)
                else:
                    unparsed += 1
    finally:
        backend.close()
    return {
        "judge_win_rate": fmean(scores) if scores else None,
        "judge_pairs": len(items),
        "judge_unparsed": unparsed,
        "judge_inconsistent": inconsistent,
        "judge_ties": ties,
        "judge": {
            "id": spec.id,
            "name": spec.name,
            "model": model or spec.model,
            "template_id": t.id,
            "template_version": t.version,
        },
    }


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
    if settings.judge is not None:
        out |= judge_win_rate(
            settings.judge,
            prompts,
            [s.text for s in new],
            [s.text for s in old],
            seed=seed,
        )
    if progress:
        progress(1.0)
    return out
