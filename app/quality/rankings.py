"""Kendall's tau for rankings: two orders (scipy), and agreement among the rankers of each item.

Rankings in Tandem are full permutations of an item's responses, so tau-a equals scipy's tau-b
and, written as sign vectors over response pairs, tau(r, s) = S_r . S_s / P. The mean over an
item's rater pairs then needs only the sum of its sign vectors (sum over pairs of S_r . S_s is
(|sum S|^2 - m P) / 2): no pair of rankers is ever enumerated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from app.quality.arrays import FloatArray, IntArray, ints, same_length
from app.quality.bootstrap import N_BOOT, Estimate, bootstrap, finite, ratio


def kendall_tau(x: npt.ArrayLike, y: npt.ArrayLike) -> float | None:
    """scipy's tau-b between two score or rank vectors; None where undefined (a constant one)."""
    from scipy.stats import kendalltau

    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("x and y must be one-dimensional and of one length.")
    if len(a) < 2:
        return None
    return finite(kendalltau(a, b).statistic)


def rank_matrix(orders: IntArray) -> IntArray:
    """Per row, the rank (0 = best) of each response, responses in increasing id order."""
    return np.argsort(orders, axis=1).astype(np.int64)


def pair_signs(ranks: IntArray) -> npt.NDArray[np.int8]:
    """Per row, +1/-1 for each response pair (i < j in id order): is i ranked above j?"""
    k = ranks.shape[1]
    i, j = np.triu_indices(k, 1)
    signs: npt.NDArray[np.int8] = np.sign(ranks[:, j] - ranks[:, i]).astype(np.int8)
    return signs


def _check_permutations(orders: IntArray) -> None:
    ids = np.sort(orders, axis=1)
    if orders.shape[1] > 1 and np.any(ids[:, 1:] == ids[:, :-1]):
        raise ValueError("an order lists a response twice.")


def paired_tau(orders_a: Sequence[Sequence[int]], orders_b: Sequence[Sequence[int]]) -> FloatArray:
    """Kendall's tau of each pair of orders (orders_a[i] against orders_b[i]), vectorised."""
    if len(orders_a) != len(orders_b):
        raise ValueError("orders_a and orders_b must have one length.")
    out = np.full(len(orders_a), np.nan)
    lengths = np.array([len(o) for o in orders_a], dtype=np.int64)
    if np.any(lengths != np.array([len(o) for o in orders_b], dtype=np.int64)):
        raise ValueError("each pair of orders must rank the same responses.")
    for k in np.unique(lengths):
        rows = np.flatnonzero(lengths == k)
        if k < 2:
            continue
        a = np.asarray([orders_a[r] for r in rows.tolist()], dtype=np.int64)
        b = np.asarray([orders_b[r] for r in rows.tolist()], dtype=np.int64)
        _check_permutations(a)
        if np.any(np.sort(a, axis=1) != np.sort(b, axis=1)):
            raise ValueError("each pair of orders must rank the same responses.")
        sa, sb = pair_signs(rank_matrix(a)), pair_signs(rank_matrix(b))
        out[rows] = (sa.astype(np.int64) * sb).sum(axis=1) / sa.shape[1]
    return out


def item_mean_tau(
    items: npt.ArrayLike, orders: Sequence[Sequence[int]]
) -> tuple[IntArray, FloatArray]:
    """Per item with two rankings or more (sorted ids): the mean tau over its pairs of rankers."""
    it = ints(items, "items")
    same_length(items=it, orders=np.empty(len(orders)))
    lengths = np.array([len(o) for o in orders], dtype=np.int64)
    out_items: list[IntArray] = []
    out_tau: list[FloatArray] = []
    for k in np.unique(lengths):
        rows = np.flatnonzero(lengths == k)
        if k < 2:
            continue
        o = np.asarray([orders[r] for r in rows.tolist()], dtype=np.int64)
        _check_permutations(o)
        sub = it[rows]
        order = np.argsort(sub, kind="stable")
        sub, o = sub[order], o[order]
        starts = np.flatnonzero(np.r_[True, sub[1:] != sub[:-1]])
        ids = np.sort(o, axis=1)
        first_of_item = np.repeat(starts, np.diff(np.r_[starts, len(sub)]))
        if np.any(ids != ids[first_of_item]):
            raise ValueError("the rankings of one item must order the same responses.")
        signs = pair_signs(rank_matrix(o)).astype(np.int64)
        total = np.add.reduceat(signs, starts, axis=0)
        m = np.diff(np.r_[starts, len(sub)])
        p = signs.shape[1]
        keep = m >= 2
        pair_sum = ((total[keep] ** 2).sum(axis=1) - m[keep] * p) / 2.0
        out_items.append(sub[starts][keep])
        out_tau.append(pair_sum / p / (m[keep] * (m[keep] - 1) / 2.0))
    if not out_items:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    all_items, all_tau = np.concatenate(out_items), np.concatenate(out_tau)
    if len(np.unique(all_items)) != len(all_items):
        raise ValueError("the rankings of one item must order the same responses.")
    order = np.argsort(all_items)
    return all_items[order], all_tau[order]


def ranking_agreement(
    items: npt.ArrayLike,
    orders: Sequence[Sequence[int]],
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> Estimate:
    """Mean over items of the mean Kendall tau between the item's rankings (1: all identical).

    `orders[i]` is vote i's order of response ids, best first; n counts items ranked twice or more.
    """
    _, tau = item_mean_tau(items, orders)
    return bootstrap(np.column_stack([tau, np.ones_like(tau)]), ratio, n_boot=n_boot, seed=seed)


def ranking_versus(
    judge_items: npt.ArrayLike,
    judge_orders: Sequence[Sequence[int]],
    human_items: npt.ArrayLike,
    human_orders: Sequence[Sequence[int]],
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> Estimate:
    """Mean over items of the judge's mean Kendall tau with each human ranking of the item.

    The judge-human counterpart of `ranking_agreement` (human-human): both average tau over
    pairs of rankers, so the two numbers compare. One judge order per item; items without a
    human ranking are left out; n counts the items compared.
    """
    ji, hi = ints(judge_items, "judge_items"), ints(human_items, "human_items")
    same_length(judge_items=ji, judge_orders=np.empty(len(judge_orders)))
    same_length(human_items=hi, human_orders=np.empty(len(human_orders)))
    if len(np.unique(ji)) != len(ji):
        raise ValueError("give one judge order per item.")
    humans: dict[int, list[int]] = {}
    for row, item in enumerate(hi.tolist()):
        humans.setdefault(item, []).append(row)
    pairs_a: list[Sequence[int]] = []
    pairs_b: list[Sequence[int]] = []
    owner: list[int] = []
    for row, item in enumerate(ji.tolist()):
        for h in humans.get(item, ()):
            pairs_a.append(judge_orders[row])
            pairs_b.append(human_orders[h])
            owner.append(item)
    if not owner:
        return bootstrap(np.zeros((0, 2)), ratio, n_boot=n_boot, seed=seed)
    tau = paired_tau(pairs_a, pairs_b)
    items, index = np.unique(np.asarray(owner, dtype=np.int64), return_inverse=True)
    per_item = np.bincount(index, weights=tau, minlength=len(items)) / np.bincount(
        index, minlength=len(items)
    )
    return bootstrap(
        np.column_stack([per_item, np.ones(len(items))]), ratio, n_boot=n_boot, seed=seed
    )
