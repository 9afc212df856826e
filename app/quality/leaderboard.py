"""Model leaderboard, Chatbot-Arena style: Bradley-Terry on an Elo scale, bootstrap intervals.

Each battle is one vote between two responses whose `model` differs. The fit is scikit-learn's
logistic regression without intercept on +-ln(base) indicator columns, so a model's
coefficient times `scale` is its Elo-scale score: P(a beats b) = 1 / (1 + base^((Rb - Ra) /
scale)). A tie counts as half a win for each side (two rows of weight 1/2). Scores are centred
on `anchor` (their mean). A weak Gaussian prior (L2, standard deviation `scale` points by
default) keeps a model that won or lost every battle finite.

Length control adds a style covariate as Arena's style control does: the normalised length
difference (len_a - len_b) / (len_a + len_b), divided by its root mean square (not centred: the
sides are arbitrary), and reports its effect in score points per RMS. The covariate is rounded
to steps of 0.05 (its rounding error, 0.014 RMS, shrinks the effect by about 0.2% when the
differences spread over 0.3 RMS) so that identical battles collapse into weighted rows: the fit
and each bootstrap replicate cost the number of distinct battles (at most 3 x 41 per pair of
models), not the number of votes.

Worker-side only: scikit-learn is imported inside `bradley_terry`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.quality.arrays import FloatArray, IntArray, floats, same_length
from app.quality.bootstrap import Estimate, finite, percentile_interval

N_BOOT = 200
LENGTH_STEP = 0.05


@dataclass(frozen=True, slots=True)
class Rating:
    model: str
    score: float
    low: float | None
    high: float | None
    rank: int  # 1 + the number of models whose whole interval lies above this one's
    battles: int
    wins: float  # ties count half

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "score": self.score,
            "low": self.low,
            "high": self.high,
            "rank": self.rank,
            "battles": self.battles,
            "wins": self.wins,
        }


@dataclass(frozen=True, slots=True)
class Leaderboard:
    ratings: list[Rating]  # best score first
    battles: int
    ties: int
    skipped: int  # votes between two responses of the same model
    connected: bool  # False: some models never met, even through others; compare within groups
    length_effect: Estimate | None  # score points per RMS of the normalised length difference
    n_boot: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "ratings": [r.as_dict() for r in self.ratings],
            "battles": self.battles,
            "ties": self.ties,
            "skipped": self.skipped,
            "connected": self.connected,
            "length_effect": None if self.length_effect is None else self.length_effect.as_dict(),
            "n_boot": self.n_boot,
        }


def _design(
    a: IntArray,
    b: IntArray,
    y: FloatArray,
    x: IntArray | None,
    x_unit: float,
    n_models: int,
    base: float,
) -> tuple[FloatArray, FloatArray, FloatArray, IntArray, IntArray]:
    """Rows for the distinct battle types: X, labels, each row's share of its battle, battles
    per type, and each row's type.

    A battle is written with the lower model code first (the sides are arbitrary: swapping them
    flips the outcome and the covariate), then battles are grouped by (a, b, outcome,
    covariate step `x`, whose value is x * x_unit); a tie type makes two rows.
    """  # fmt: skip
    swap = a > b
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    half_wins = np.round(np.where(swap, 1.0 - y, y) * 2).astype(np.int64)
    # One int64 key per battle (a, b, outcome, covariate step): a 1-D unique is far faster
    # than a unique over rows.
    key = (a * n_models + b) * 3 + half_wins
    if x is not None:
        x = np.where(swap, -x, x)
        x_low, x_span = int(x.min()), int(x.max() - x.min()) + 1
        key = key * x_span + (x - x_low)
    keys, counts = np.unique(key, return_counts=True)
    types = np.empty((len(keys), 4 if x is not None else 3), dtype=np.int64)
    if x is not None:
        types[:, 3] = keys % x_span + x_low
        keys = keys // x_span
    types[:, 2] = keys % 3
    types[:, 1] = (keys // 3) % n_models
    types[:, 0] = keys // 3 // n_models
    tie = types[:, 2] == 1
    row_type = np.r_[np.arange(len(types)), np.flatnonzero(tie)]
    labels = np.r_[(types[:, 2] == 2).astype(np.float64), np.zeros(int(tie.sum()))]
    labels[: len(types)][tie] = 1.0
    share = np.r_[np.where(tie, 0.5, 1.0), np.full(int(tie.sum()), 0.5)]
    width = n_models + (1 if x is not None else 0)
    design = np.zeros((len(row_type), width))
    r = np.arange(len(row_type))
    ln = math.log(base)
    design[r, types[row_type, 0]] = ln
    design[r, types[row_type, 1]] = -ln
    if x is not None:
        design[:, n_models] = types[row_type, 3] * x_unit
    if len(np.unique(labels)) < 2:
        # One side won every battle: add each row as seen from the other side at half weight
        # (the same likelihood), so that the fit sees both classes.
        design = np.r_[design, -design]
        labels = np.r_[labels, 1.0 - labels]
        share = np.r_[share, share] / 2.0
        row_type = np.r_[row_type, row_type]
    return design, labels, share, counts.astype(np.int64), row_type.astype(np.int64)


def bradley_terry(
    model_a: Sequence[str],
    model_b: Sequence[str],
    outcome: npt.ArrayLike,
    *,
    length_a: npt.ArrayLike | None = None,
    length_b: npt.ArrayLike | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
    scale: float = 400.0,
    base: float = 10.0,
    anchor: float = 1000.0,
    prior_sd: float | None = None,
) -> Leaderboard:
    """Scores with 95% bootstrap intervals (battles resampled) from (model_a, model_b, outcome).

    outcome: 1 when a won, 0 when b won, 0.5 for a tie. Give `length_a` and `length_b` (e.g. in
    characters) for length control. `prior_sd` is the prior's standard deviation in score
    points (default `scale`).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    names_a, names_b = np.asarray(model_a, dtype=str), np.asarray(model_b, dtype=str)
    y = floats(outcome, "outcome")
    same_length(model_a=names_a, model_b=names_b, outcome=y)
    if y.size and not np.isin(y, (0.0, 0.5, 1.0)).all():
        raise ValueError("outcome must be 1 (a won), 0 (b won) or 0.5 (a tie).")
    if scale <= 0 or base <= 1:
        raise ValueError("scale must be positive and base above 1.")
    control = length_a is not None or length_b is not None
    x: FloatArray | None = None
    if control:
        if length_a is None or length_b is None:
            raise ValueError("give both length_a and length_b for length control.")
        la, lb = floats(length_a, "length_a"), floats(length_b, "length_b")
        same_length(model_a=names_a, length_a=la, length_b=lb)
        if la.size and (la.min() < 0 or lb.min() < 0):
            raise ValueError("lengths cannot be negative.")
        total = la + lb
        x = np.divide(la - lb, total, out=np.zeros_like(total), where=total > 0)
    same = names_a == names_b
    names_a, names_b, y = names_a[~same], names_b[~same], y[~same]
    if x is not None:
        x = x[~same]
    n_battles = len(y)
    if n_battles == 0:
        return Leaderboard([], 0, 0, int(same.sum()), True, None, n_boot)
    models, coded = np.unique(np.r_[names_a, names_b], return_inverse=True)
    coded = coded.reshape(-1)
    a, b = coded[:n_battles], coded[n_battles:]
    m = len(models)
    steps: IntArray | None = None
    rms = 0.0
    if x is not None:
        steps = np.round(x / LENGTH_STEP).astype(np.int64)
        rms = float(np.sqrt(np.mean((steps * LENGTH_STEP) ** 2)))
        if rms == 0.0:
            steps = None  # every pair of lengths (nearly) equal: nothing to control for
    design, labels, share, type_counts, row_type = _design(
        a, b, y, steps, LENGTH_STEP / rms if rms else 0.0, m, base
    )
    sd = (prior_sd if prior_sd is not None else scale) / scale
    # Newton-Cholesky: a handful of iterations on (distinct battles x models); replicates
    # start from the previous solution.
    model = LogisticRegression(
        C=sd * sd,
        fit_intercept=False,
        solver="newton-cholesky",
        max_iter=100,
        tol=1e-8,
        warm_start=True,
    )

    def fit(counts: IntArray) -> FloatArray:
        weight = share * counts[row_type]
        with warnings.catch_warnings():
            # Started at the optimum already (a replicate equal to the data), the Newton line
            # search cannot improve and hands over to lbfgs, which confirms it: not a failure.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(design, labels, sample_weight=weight)
        coef: FloatArray = model.coef_[0].astype(np.float64)
        return coef

    coef = fit(type_counts)
    scores = scale * (coef[:m] - coef[:m].mean()) + anchor
    effect = scale * coef[m] if steps is not None else None

    reps = np.full((max(n_boot, 0), m + 1), np.nan)
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        p = type_counts / n_battles
        for r in range(n_boot):
            c = fit(rng.multinomial(n_battles, p))
            reps[r, :m] = scale * (c[:m] - c[:m].mean()) + anchor
            if steps is not None:
                reps[r, m] = scale * c[m]
    bounds = [percentile_interval(reps[:, j]) for j in range(m + 1)]
    low = np.array([np.nan if lo is None else lo for lo, _ in bounds[:m]])
    high = np.array([np.nan if hi is None else hi for _, hi in bounds[:m]])
    above = (low[None, :] > high[:, None]).sum(axis=1) if n_boot > 0 else np.zeros(m, dtype=int)

    battles = np.bincount(a, minlength=m) + np.bincount(b, minlength=m)
    wins = np.bincount(a, weights=y, minlength=m) + np.bincount(b, weights=1.0 - y, minlength=m)
    order = np.argsort(-scores, kind="stable")
    ratings = [
        Rating(
            model=str(models[i]),
            score=float(scores[i]),
            low=finite(low[i]),
            high=finite(high[i]),
            rank=int(above[i]) + 1,
            battles=int(battles[i]),
            wins=float(wins[i]),
        )
        for i in order
    ]
    length_effect = None
    if effect is not None:
        lo_e, hi_e = bounds[m]
        length_effect = Estimate(finite(effect), lo_e, hi_e, n_battles)
    return Leaderboard(
        ratings=ratings,
        battles=n_battles,
        ties=int(np.count_nonzero(y == 0.5)),
        skipped=int(same.sum()),
        connected=_connected(a, b, m),
        length_effect=length_effect,
        n_boot=max(n_boot, 0),
    )


def _connected(a: IntArray, b: IntArray, n: int) -> bool:
    """Whether every model is reachable from every other through battles."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    count, _ = connected_components(graph, directed=False)
    return int(count) == 1
