"""Win rates under a gold reward: a policy's samples against a baseline's, on the same prompts.

A simulated world knows the truth (app/simulate/rewards.py), so a loop or the CPU demo can say
how much a policy really improved, not only what its own reward model thinks. Both policies
sample one response per prompt with the same seed; the gold reward scores each pair and the
candidate wins, ties (counted half) or loses. The 95% interval is Wilson's score interval on
the win share, ties counted half, over the prompts compared.

`win_interval` is plain arithmetic (the web process may use it); `gold_win_rate` loads models
and is worker-side: torch and transformers are imported inside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

from app.simulate.rewards import GoldReward

Z95 = 1.959964


@dataclass(frozen=True, slots=True)
class WinRate:
    """How often a candidate beat a baseline: counts, share (ties half) and its 95% interval."""

    wins: int
    ties: int
    losses: int
    rate: float
    low: float
    high: float

    @property
    def n(self) -> int:
        return self.wins + self.ties + self.losses

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "n": self.n}


def wilson(p: float, n: int) -> tuple[float, float]:
    """Wilson's 95% score interval of a share `p` observed over `n` comparisons."""
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(max(0.0, p * (1 - p)) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def win_interval(wins: int, ties: int, losses: int) -> WinRate:
    """The win share (ties count half) with Wilson's 95% score interval; NaN when n is 0."""
    n = wins + ties + losses
    if n == 0:
        nan = float("nan")
        return WinRate(0, 0, 0, nan, nan, nan)
    p = (wins + ties / 2) / n
    low, high = wilson(p, n)
    return WinRate(wins, ties, losses, p, low, high)


def compare_scores(candidate: Sequence[float], baseline: Sequence[float]) -> WinRate:
    wins = sum(1 for a, b in zip(candidate, baseline, strict=True) if a > b)
    ties = sum(1 for a, b in zip(candidate, baseline, strict=True) if a == b)
    return win_interval(wins, ties, len(candidate) - wins - ties)


@dataclass(frozen=True, slots=True)
class GoldComparison:
    """A candidate policy against a baseline under a gold reward, on the same prompts."""

    reward: str  # name@version
    win: WinRate
    mean_reward: float
    baseline_mean_reward: float
    mean_words: float
    baseline_mean_words: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "reward": self.reward,
            "win_rate": self.win.rate,
            "win_rate_low": self.win.low,
            "win_rate_high": self.win.high,
            "wins": self.win.wins,
            "ties": self.win.ties,
            "losses": self.win.losses,
            "prompts": self.win.n,
            "mean_gold": self.mean_reward,
            "baseline_mean_gold": self.baseline_mean_reward,
            "mean_words": self.mean_words,
            "baseline_mean_words": self.baseline_mean_words,
        }


def score_texts(reward: GoldReward, prompts: Sequence[str], texts: Sequence[str]) -> list[float]:
    return [reward.score(p, t) for p, t in zip(prompts, texts, strict=True)]


def compare_texts(
    reward: GoldReward,
    prompts: Sequence[str],
    candidate: Sequence[str],
    baseline: Sequence[str],
) -> GoldComparison:
    """Pairs of texts already sampled (the same prompt at the same index) under the reward."""
    from app.simulate.rewards import words

    new = score_texts(reward, prompts, candidate)
    old = score_texts(reward, prompts, baseline)
    return GoldComparison(
        reward=reward.label,
        win=compare_scores(new, old),
        mean_reward=fmean(new) if new else float("nan"),
        baseline_mean_reward=fmean(old) if old else float("nan"),
        mean_words=fmean(len(words(t)) for t in candidate) if candidate else float("nan"),
        baseline_mean_words=fmean(len(words(t)) for t in baseline) if baseline else float("nan"),
    )


def sample_texts(
    model_path: str | Path,
    prompts: Sequence[str],
    *,
    seed: int,
    max_new_tokens: int,
    temperature: float = 1.0,
) -> list[str]:
    """One sample per prompt (as a user message) from a local model folder. Worker-side."""
    from app.training.config import Precision
    from app.training.generation import sample
    from app.training.loading import load_causal_lm, load_tokenizer, resolve_model

    path = str(model_path)
    tok = load_tokenizer(resolve_model(path))
    model = load_causal_lm(path, tok, Precision.fp32)
    groups = sample(
        model,
        tok,
        [[{"role": "user", "content": p}] for p in prompts],
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        seed=seed,
    )
    return [g[0].text for g in groups]


def gold_win_rate(
    candidate: str | Path,
    baseline: str | Path,
    prompts: Sequence[str],
    reward: GoldReward,
    *,
    seed: int,
    max_new_tokens: int,
    temperature: float = 1.0,
) -> GoldComparison:
    """Sample both policies on `prompts` (same seed) and compare under the gold reward."""
    new = sample_texts(
        candidate, prompts, seed=seed, max_new_tokens=max_new_tokens, temperature=temperature
    )
    old = sample_texts(
        baseline, prompts, seed=seed, max_new_tokens=max_new_tokens, temperature=temperature
    )
    return compare_texts(reward, prompts, new, old)
