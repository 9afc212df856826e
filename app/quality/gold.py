"""Gold accuracy per annotator, and the check that turns it into a warning or a pause advice.

Scores are the annotations' `gold_score` in [0, 1] (app/annotations/gold.py: 0/1 for pairwise,
partial credit for rankings, spans and ratings). The interval is Wilson's score interval on the
summed score, exact for 0/1 scores and a close approximation for partial credit; a pause is
advised only when the whole interval lies below the threshold, so a few unlucky answers never
pause anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from app.errors import Invalid
from app.quality.arrays import FloatArray, IntArray, floats, ints, same_length

Z95 = 1.959963984540054  # two-sided 95% normal quantile
Status = Literal["ok", "warning", "pause", "too_few"]


def wilson_interval(
    successes: npt.ArrayLike, n: npt.ArrayLike, z: float = Z95
) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval per row (NaN where n is 0); scipy's binomtest agrees on 0/1 data."""
    k, m = np.asarray(successes, dtype=np.float64), np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / m
        denom = 1.0 + z * z / m
        centre = (p + z * z / (2.0 * m)) / denom
        half = z * np.sqrt(p * (1.0 - p) / m + z * z / (4.0 * m * m)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class GoldAccuracy:
    """Per annotator (sorted ids): gold answers, summed score, accuracy and its 95% interval."""

    raters: IntArray
    answered: IntArray
    score: FloatArray
    accuracy: FloatArray
    low: FloatArray
    high: FloatArray


def gold_accuracy(raters: npt.ArrayLike, scores: npt.ArrayLike) -> GoldAccuracy:
    """Accuracy of each annotator on gold items: one (rater, score in [0, 1]) per answer."""
    rt, sc = ints(raters, "raters"), floats(scores, "scores")
    same_length(raters=rt, scores=sc)
    if sc.size and (sc.min() < 0 or sc.max() > 1):
        raise ValueError("gold scores must lie between 0 and 1.")
    ids, index = np.unique(rt, return_inverse=True)
    answered = np.bincount(index, minlength=len(ids)).astype(np.int64)
    score = np.bincount(index, weights=sc, minlength=len(ids)).astype(np.float64)
    accuracy = score / np.maximum(answered, 1)
    low, high = wilson_interval(score, answered)
    return GoldAccuracy(ids, answered, score, accuracy, low, high)


@dataclass(frozen=True, slots=True)
class GoldPolicy:
    """When gold accuracy warns or advises a pause.

    warn_below: accuracy under which the annotator is warned; pause_below: advise a pause when
    the upper end of the 95% interval is under it (None: never); min_answers: fewer gold
    answers than this give "too_few" and no judgement.
    """

    warn_below: float = 0.7
    pause_below: float | None = None
    min_answers: int = 10

    def __post_init__(self) -> None:
        if not 0.0 <= self.warn_below <= 1.0:
            raise Invalid("warn_below must be between 0 and 1.")
        if self.pause_below is not None and not 0.0 <= self.pause_below <= 1.0:
            raise Invalid("pause_below must be between 0 and 1.")
        if self.pause_below is not None and self.pause_below > self.warn_below:
            raise Invalid("pause_below cannot be above warn_below: a pause would come unwarned.")
        if self.min_answers < 1:
            raise Invalid("min_answers must be at least 1.")


@dataclass(frozen=True, slots=True)
class GoldVerdict:
    rater: int
    answered: int
    accuracy: float
    low: float
    high: float
    status: Status
    reason: str


def gold_check(acc: GoldAccuracy, policy: GoldPolicy) -> list[GoldVerdict]:
    """A status per annotator, with the sentence a researcher (or the annotator) reads."""
    out: list[GoldVerdict] = []
    for i in range(len(acc.raters)):
        n, a = int(acc.answered[i]), float(acc.accuracy[i])
        low, high = float(acc.low[i]), float(acc.high[i])
        status: Status
        if n < policy.min_answers:
            status = "too_few"
            reason = f"{n} gold answers so far; judged from {policy.min_answers}."
        elif policy.pause_below is not None and high < policy.pause_below:
            status = "pause"
            reason = (
                f"Gold accuracy {a:.0%} on {n} answers (95% interval {low:.0%}-{high:.0%}) is "
                f"clearly below {policy.pause_below:.0%}."
            )
        elif a < policy.warn_below:
            status = "warning"
            reason = f"Gold accuracy {a:.0%} on {n} answers is below {policy.warn_below:.0%}."
        else:
            status = "ok"
            reason = f"Gold accuracy {a:.0%} on {n} answers."
        out.append(GoldVerdict(int(acc.raters[i]), n, a, low, high, status, reason))
    return out
