"""Calibration of a judge's probabilities against the human majority: Brier score, reliability
curve and expected calibration error.

Plain numpy, so judge metrics need no scikit-learn; tests hold them equal to
`sklearn.metrics.brier_score_loss` and `sklearn.calibration.calibration_curve`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.quality.arrays import FloatArray, bools, floats, same_length
from app.quality.bootstrap import N_BOOT, Estimate, mean


def _checked(prob: npt.ArrayLike, outcome: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    p, y = floats(prob, "prob"), bools(outcome, "outcome").astype(np.float64)
    same_length(prob=p, outcome=y)
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError("prob must lie between 0 and 1.")
    return p, y


def brier_score(
    prob: npt.ArrayLike, outcome: npt.ArrayLike, *, n_boot: int = N_BOOT, seed: int = 0
) -> Estimate:
    """Mean squared gap between the probability and what happened (0 best; 0.25: always 1/2).

    `prob[i]`: the judge's probability that a response is better; `outcome[i]`: whether the
    human majority preferred it.
    """
    p, y = _checked(prob, outcome)
    return mean((p - y) ** 2, n_boot=n_boot, seed=seed)


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    low: float
    high: float
    count: int
    mean_prob: float  # mean predicted probability in the bin
    observed: float  # share of outcomes that happened


def reliability_curve(
    prob: npt.ArrayLike, outcome: npt.ArrayLike, n_bins: int = 10
) -> list[CalibrationBin]:
    """Equal-width bins (low, high], the first one [0, high], as scikit-learn's; empty bins are
    left out."""
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1.")
    p, y = _checked(prob, outcome)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges[1:-1], p, side="left"), 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    prob_sum = np.bincount(index, weights=p, minlength=n_bins)
    hit_sum = np.bincount(index, weights=y, minlength=n_bins)
    return [
        CalibrationBin(
            low=float(edges[i]),
            high=float(edges[i + 1]),
            count=int(count[i]),
            mean_prob=float(prob_sum[i] / count[i]),
            observed=float(hit_sum[i] / count[i]),
        )
        for i in range(n_bins)
        if count[i]
    ]


def expected_calibration_error(bins: list[CalibrationBin]) -> float | None:
    """Count-weighted mean gap between predicted and observed over the bins."""
    total = sum(b.count for b in bins)
    if total == 0:
        return None
    return sum(b.count * abs(b.mean_prob - b.observed) for b in bins) / total
