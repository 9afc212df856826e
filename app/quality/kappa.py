"""Cohen's kappa (two raters, every rater pair, a judge against the human majority) and Fleiss'.

Both are closed forms over a contingency table (Cohen) or per-item label counts (Fleiss), so
they are computed here in numpy, vectorised over rater pairs and bootstrap replicates (one
scikit-learn call per pair would take minutes on a large project); tests hold Cohen's equal to
`sklearn.metrics.cohen_kappa_score` and both to published worked examples.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from app.quality.arrays import FloatArray, IntArray, codes, ints, row_keys, same_length
from app.quality.bootstrap import (
    CHUNK_CELLS,
    LEVEL,
    N_BOOT,
    Estimate,
    bootstrap,
    finite,
    mean,
    multinomial_per_group,
)
from app.quality.labels import NO_MAJORITY, label_counts, majority

Weights = Literal["linear", "quadratic"] | None
# Per rater pair intervals are a display (thousands of pairs with a few dozen items each):
# 200 replicates place their bounds within a few hundredths of kappa, in a fifth of the time.
PAIR_N_BOOT = 200


def _weights(n_labels: int, weights: Weights) -> FloatArray:
    idx = np.arange(n_labels, dtype=np.float64)
    if weights is None:
        return 1.0 - np.eye(n_labels)
    if weights == "linear":
        return np.abs(idx[:, None] - idx[None, :])
    if weights == "quadratic":
        return (idx[:, None] - idx[None, :]) ** 2
    raise ValueError("weights must be None, 'linear' or 'quadratic'.")


def kappa_from_tables(tables: FloatArray, w: FloatArray) -> FloatArray:
    """Kappa of each flattened V*V contingency table (rows: rater a, columns: rater b)."""
    v = w.shape[0]
    t = tables.reshape(-1, v, v)
    n = t.sum(axis=(1, 2))
    expected = t.sum(axis=2)[:, :, None] * t.sum(axis=1)[:, None, :] / n[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(1.0 - (w * t).sum(axis=(1, 2)) / (w * expected).sum(axis=(1, 2)))


def contingency(a: IntArray, b: IntArray, n_labels: int) -> IntArray:
    """Flattened V*V table: cell a*V + b counts the items labelled a by one and b by the other."""
    return np.bincount(a * n_labels + b, minlength=n_labels * n_labels).astype(np.int64)


def cohen_kappa(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    n_labels: int,
    *,
    weights: Weights = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> Estimate:
    """Kappa between two raters' label codes on the same items (a[i] and b[i] for item i).

    `weights` "linear" or "quadratic" gives weighted kappa for ordered labels. Undefined (None)
    when chance agreement is total (both raters always used one and the same label).
    """
    x, y = codes(a, n_labels, "a"), codes(b, n_labels, "b")
    same_length(a=x, b=y)
    w = _weights(n_labels, weights)
    table = contingency(x, y, n_labels)
    # Each item is one cell of the table: resampling items is resampling cells.
    return bootstrap(
        np.eye(n_labels * n_labels),
        lambda t: kappa_from_tables(t, w),
        counts=table,
        n_boot=n_boot,
        seed=seed,
    )


@dataclass(frozen=True, slots=True)
class PairKappas:
    """Kappa for each pair of raters with enough shared items (rater_a < rater_b)."""

    rater_a: IntArray
    rater_b: IntArray
    n: IntArray  # items both labelled
    kappa: FloatArray  # NaN where undefined
    low: FloatArray
    high: FloatArray

    def as_rows(self) -> list[dict[str, float | int | None]]:
        return [
            {
                "rater_a": int(self.rater_a[i]),
                "rater_b": int(self.rater_b[i]),
                "n": int(self.n[i]),
                "kappa": finite(self.kappa[i]),
                "low": finite(self.low[i]),
                "high": finite(self.high[i]),
            }
            for i in range(len(self.n))
        ]


def vote_pairs(items: IntArray) -> tuple[IntArray, IntArray]:
    """Index pairs (i, j), i < j in sorted order, of votes on the same item; items sorted."""
    n = len(items)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    starts = np.flatnonzero(np.r_[True, items[1:] != items[:-1]])
    ends = np.r_[starts[1:], n]
    group_end = np.repeat(ends, ends - starts)
    partners = group_end - np.arange(n) - 1
    left = np.repeat(np.arange(n), partners)
    offset = np.arange(len(left)) - np.repeat(np.cumsum(partners) - partners, partners)
    return left, left + 1 + offset


def rater_pair_kappas(
    items: npt.ArrayLike,
    raters: npt.ArrayLike,
    labels: npt.ArrayLike,
    n_labels: int,
    *,
    min_items: int = 10,
    weights: Weights = None,
    n_boot: int = PAIR_N_BOOT,
    seed: int = 0,
) -> PairKappas:
    """Cohen's kappa for every pair of raters who labelled at least `min_items` items in common.

    One vote per (item, rater): a rater's repeated votes on an item are a ValueError. Each
    pair's interval resamples its own shared items (a multinomial draw over its table's cells,
    all pairs and replicates at once).
    """
    it, rt = ints(items, "items"), ints(raters, "raters")
    lab = codes(labels, n_labels)
    same_length(items=it, raters=rt, labels=lab)
    order = np.lexsort((rt, it))
    it, rt, lab = it[order], rt[order], lab[order]
    if len(it) > 1 and np.any((it[1:] == it[:-1]) & (rt[1:] == rt[:-1])):
        raise ValueError("a rater has more than one vote on an item.")
    left, right = vote_pairs(it)
    # Within an item votes are sorted by rater, so rater[left] < rater[right].
    ra, rb, la, lb = rt[left], rt[right], lab[left], lab[right]
    _, first, pair_index = np.unique(row_keys(ra, rb), return_index=True, return_inverse=True)
    pair_keys = np.column_stack([ra[first], rb[first]])
    v2 = n_labels * n_labels
    tables = np.bincount(
        pair_index * v2 + la * n_labels + lb, minlength=len(pair_keys) * v2
    ).reshape(len(pair_keys), v2)
    n = tables.sum(axis=1)
    keep = n >= max(min_items, 1)
    pair_keys, tables, n = pair_keys[keep], tables[keep], n[keep]
    w = _weights(n_labels, weights)
    kappa = kappa_from_tables(tables.astype(np.float64), w)
    low = np.full(len(n), np.nan)
    high = np.full(len(n), np.nan)
    if n_boot > 0 and len(n):
        rng = np.random.default_rng(seed)
        p = tables / n[:, None]
        step = max(1, CHUNK_CELLS // (len(n) * v2))
        reps = np.empty((n_boot, len(n)))
        for start in range(0, n_boot, step):
            m = min(step, n_boot - start)
            drawn = multinomial_per_group(rng, n, p, m)
            reps[start : start + m] = kappa_from_tables(drawn.reshape(-1, v2), w).reshape(m, -1)
        tail = (1.0 - LEVEL) / 2.0 * 100.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: kappa undefined
            low, high = np.nanpercentile(reps, [tail, 100.0 - tail], axis=0)
    return PairKappas(pair_keys[:, 0], pair_keys[:, 1], n.astype(np.int64), kappa, low, high)


@dataclass(frozen=True, slots=True)
class VersusMajority:
    """A judge (or any rater) against the human majority on the items both have."""

    agreement: Estimate  # share of items where the judge's label is the majority label
    kappa: Estimate
    items: int  # items with a judge label and a strict human majority
    no_majority: int  # items with a judge label whose human votes had no strict majority


def versus_majority(
    judge_items: npt.ArrayLike,
    judge_labels: npt.ArrayLike,
    human_items: npt.ArrayLike,
    human_labels: npt.ArrayLike,
    n_labels: int,
    *,
    weights: Weights = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> VersusMajority:
    """Agreement and Cohen's kappa of one judge label per item with the humans' plurality label.

    Items where the top human count is shared have no majority and are counted apart.
    """
    ji, jl = ints(judge_items, "judge_items"), codes(judge_labels, n_labels, "judge_labels")
    same_length(judge_items=ji, judge_labels=jl)
    if len(np.unique(ji)) != len(ji):
        raise ValueError("give one judge label per item.")
    maj = majority(human_items, human_labels, n_labels)
    pos = np.searchsorted(maj.items, ji)
    pos = np.minimum(pos, max(len(maj.items) - 1, 0))
    has_humans = (maj.items[pos] == ji) if len(maj.items) else np.zeros(len(ji), dtype=bool)
    human = np.where(has_humans, maj.label[pos] if len(maj.items) else NO_MAJORITY, NO_MAJORITY)
    undecided = int(np.count_nonzero(has_humans & (human == NO_MAJORITY)))
    both = has_humans & (human != NO_MAJORITY)
    judge, ref = jl[both], human[both]
    return VersusMajority(
        agreement=mean((judge == ref).astype(np.float64), n_boot=n_boot, seed=seed),
        kappa=cohen_kappa(judge, ref, n_labels, weights=weights, n_boot=n_boot, seed=seed),
        items=int(both.sum()),
        no_majority=undecided,
    )


def fleiss_from_rows(sums: FloatArray) -> FloatArray:
    """Fleiss' kappa from summed rows [P_i, 1, n_i1..n_iV]."""
    p_bar = sums[:, 0] / sums[:, 1]
    p = sums[:, 2:] / sums[:, 2:].sum(axis=1, keepdims=True)
    p_e = (p**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray((p_bar - p_e) / (1.0 - p_e))


def fleiss_kappa_table(counts: npt.ArrayLike, *, n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """Fleiss' kappa from an (items, categories) table of how many raters chose each category.

    Items may have different numbers of raters (each item's agreement P_i uses its own count;
    with a constant count this is Fleiss' 1971 statistic). Items with fewer than two ratings
    are left out.
    """
    table = np.asarray(counts)
    if table.ndim != 2 or (table.size and (table.dtype.kind not in "iu" or table.min() < 0)):
        raise ValueError("counts must be a two-dimensional table of non-negative integers.")
    table = table.astype(np.int64)
    m = table.sum(axis=1)
    table = table[m >= 2]
    if len(table) == 0:
        return Estimate(None, None, None, 0)
    patterns, freq = np.unique(table, axis=0, return_counts=True)
    pm = patterns.sum(axis=1).astype(np.float64)
    agree = (patterns * (patterns - 1)).sum(axis=1) / (pm * (pm - 1.0))
    rows = np.column_stack([agree, np.ones(len(patterns)), patterns.astype(np.float64)])
    return bootstrap(rows, fleiss_from_rows, counts=freq.astype(np.int64), n_boot=n_boot, seed=seed)


def fleiss_kappa(
    items: npt.ArrayLike,
    labels: npt.ArrayLike,
    n_labels: int,
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> Estimate:
    """Fleiss' kappa over votes given as (item, label code) pairs."""
    _, table = label_counts(items, labels, n_labels)
    return fleiss_kappa_table(table, n_boot=n_boot, seed=seed)
