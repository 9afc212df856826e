"""Percentile bootstrap over units (items, pairs, battles), vectorised through per-unit sums.

Every statistic in this package is a function of column sums, over units, of a small per-unit
row (a unit's coincidence matrix, a contingency cell, matched and total span counts...).
Resampling n units with replacement only changes how often each distinct row is counted, and
those counts are multinomial: one replicate is one multinomial draw and one matrix product.
Units with equal rows are drawn as one category, so a thousand replicates over a million votes
cost milliseconds when the rows repeat (labels, cells); when they are mostly distinct (a
probability per item) units are drawn one by one and counted, seconds per thousand replicates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.quality.arrays import FloatArray, IntArray

N_BOOT = 1000
LEVEL = 0.95
MEAN_LEVELS = 4096
# Replicates x distinct rows drawn at once (int64 counts): bounds memory at about 32 MiB.
CHUNK_CELLS = 1 << 22

Statistic = Callable[[FloatArray], FloatArray]


@dataclass(frozen=True, slots=True)
class Estimate:
    """A statistic with its 95% bootstrap interval; None where undefined (never NaN)."""

    value: float | None
    low: float | None
    high: float | None
    n: int  # units behind it (items, rater pairs' items, battles...)

    def as_dict(self) -> dict[str, float | int | None]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


EMPTY = Estimate(None, None, None, 0)


def finite(x: float | np.floating | None) -> float | None:
    """A float for JSON: None for NaN, infinities and None."""
    if x is None:
        return None
    f = float(x)
    return f if math.isfinite(f) else None


def resampled_sums(
    rows: FloatArray,
    counts: IntArray | None = None,
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> FloatArray:
    """(n_boot, k) column sums of rows (n, k) over bootstrap resamples of the units.

    `counts[i]` is how many units share row i (default: one each); rows are compressed to their
    distinct values first, so repeated rows cost nothing.
    """
    rows = np.asarray(rows, dtype=np.float64)
    if counts is None:
        rows, freq = np.unique(rows, axis=0, return_counts=True)
    else:
        keep = counts > 0
        rows, freq = rows[keep], counts[keep].astype(np.int64)
    n = int(freq.sum())
    out = np.empty((n_boot, rows.shape[1]))
    if n == 0:
        out.fill(np.nan)
        return out
    rng = np.random.default_rng(seed)
    if 2 * len(rows) <= n:
        # Few distinct rows: a multinomial draw over them costs O(rows) per replicate.
        p = freq / n
        step = max(1, CHUNK_CELLS // len(rows))
        for start in range(0, n_boot, step):
            m = min(step, n_boot - start)
            out[start : start + m] = rng.multinomial(n, p, size=m).astype(np.float64) @ rows
        return out
    # Mostly distinct rows: drawing n units and counting them is cheaper than the multinomial
    # (whose per-category cost is several times that of one draw).
    unit_row = None if len(rows) == n else np.repeat(np.arange(len(rows)), freq)
    step = max(1, CHUNK_CELLS // n)
    for start in range(0, n_boot, step):
        m = min(step, n_boot - start)
        drawn = rng.integers(0, n, size=(m, n))
        if unit_row is not None:
            drawn = unit_row[drawn]
        drawn += (np.arange(m) * len(rows))[:, None]
        counts = np.bincount(drawn.reshape(-1), minlength=m * len(rows)).reshape(m, len(rows))
        out[start : start + m] = counts.astype(np.float64) @ rows
    return out


def multinomial_per_group(
    rng: np.random.Generator, n: IntArray, p: FloatArray, replicates: int
) -> FloatArray:
    """(replicates, groups, k) multinomial draws, group g drawing n[g] units over p[g].

    Built from k - 1 conditional binomial draws, each vectorised over every replicate and
    group: numpy's multinomial pays a fixed cost per (replicate, group) that dominates when the
    groups are many and small (rater pairs).
    """
    groups, k = p.shape
    out = np.empty((replicates, groups, k))
    left = np.broadcast_to(n.astype(np.int64), (replicates, groups)).copy()
    mass = np.ones(groups)
    for j in range(k - 1):
        share = np.divide(p[:, j], mass, out=np.zeros(groups), where=mass > 0)
        drawn = rng.binomial(left, np.clip(share, 0.0, 1.0))
        out[:, :, j] = drawn
        left -= drawn
        mass = mass - p[:, j]
    out[:, :, k - 1] = left
    return out


def percentile_interval(
    replicates: FloatArray, level: float = LEVEL
) -> tuple[float | None, float | None]:
    """The central `level` interval of the finite replicates; (None, None) when there are none."""
    ok = replicates[np.isfinite(replicates)]
    if ok.size == 0:
        return None, None
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(ok, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap(
    rows: npt.ArrayLike,
    statistic: Statistic,
    *,
    counts: IntArray | None = None,
    value: float | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = LEVEL,
) -> Estimate:
    """`statistic` of the summed rows, with a percentile interval over resampled units.

    `statistic` maps summed rows (B, k) to B values and may return NaN where undefined (those
    replicates are left out). `value` replaces the point estimate when a reference library
    computed it; the interval still comes from the sums.
    """
    arr = np.asarray(rows, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    n = int(counts.sum()) if counts is not None else arr.shape[0]
    if n == 0:
        return EMPTY
    with np.errstate(divide="ignore", invalid="ignore"):
        if value is None:
            weights = np.ones(arr.shape[0]) if counts is None else counts.astype(np.float64)
            value = float(statistic((weights @ arr).reshape(1, -1))[0])
        point = finite(value)
        if point is None:
            return Estimate(None, None, None, n)
        if n_boot <= 0:
            return Estimate(point, None, None, n)
        replicates = statistic(resampled_sums(arr, counts, n_boot=n_boot, seed=seed))
    low, high = percentile_interval(replicates, level)
    return Estimate(point, low, high, n)


def ratio(sums: FloatArray) -> FloatArray:
    """First column over second: a share or a mean when the second column counts units."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(sums[:, 0] / sums[:, 1], dtype=np.float64)


def mean(values: npt.ArrayLike, *, n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """The mean of per-unit values (shares when they are 0/1) with its bootstrap interval.

    Past MEAN_LEVELS distinct values (a probability per item, say) the replicates resample the
    values rounded to MEAN_LEVELS levels, shifted back by the rounding's mean: what remains of
    the rounding in a replicate has a standard deviation of at most range / MEAN_LEVELS /
    sqrt(12 n), far below the interval's width, and the draws stay a multinomial over a few
    thousand categories instead of n units.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size and not np.all(np.isfinite(x)):
        raise ValueError("values must be finite numbers.")
    if x.size == 0:
        return EMPTY
    point = float(x.mean())
    levels, counts = np.unique(x, return_counts=True)
    shift = 0.0
    if len(levels) > MEAN_LEVELS:
        lo, hi = float(levels[0]), float(levels[-1])
        grid = (hi - lo) / (MEAN_LEVELS - 1)
        rounded = lo + np.round((x - lo) / grid) * grid
        shift = point - float(rounded.mean())
        levels, counts = np.unique(rounded, return_counts=True)
    rows = np.column_stack([levels + shift, np.ones_like(levels)])
    return bootstrap(
        rows, ratio, counts=counts.astype(np.int64), value=point, n_boot=n_boot, seed=seed
    )
