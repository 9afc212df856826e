"""Votes as label codes: categories encoded, pairwise choices as categories, counts and majority.

Pairwise votes are stored resolved to response ids (`preferred`, None for a tie), so the
positions a voter saw do not leak into agreement: an item's two responses are put in a fixed
order (the caller's, e.g. by id) and each vote becomes FIRST, SECOND or TIE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.quality.arrays import FloatArray, IntArray, codes, ints, same_length

FIRST, SECOND, TIE = 0, 1, 2
PAIRWISE_LABELS = ("first", "second", "tie")
NO_MAJORITY = -1


def encode(values: npt.ArrayLike) -> tuple[IntArray, npt.NDArray[Any]]:
    """Codes 0..V-1 for any hashable labels (strings, ints), and the sorted distinct labels."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError("values must be one-dimensional.")
    domain, inverse = np.unique(arr, return_inverse=True)
    return inverse.astype(np.int64), domain


def pairwise_codes(
    preferred: npt.ArrayLike, first: npt.ArrayLike, second: npt.ArrayLike
) -> IntArray:
    """Per vote: FIRST or SECOND when `preferred` is that response's id, TIE when it is negative.

    `first` and `second` are the item's two response ids in a fixed order, one per vote.
    """
    pref, a, b = ints(preferred, "preferred"), ints(first, "first"), ints(second, "second")
    same_length(preferred=pref, first=a, second=b)
    out = np.full(pref.shape, TIE, dtype=np.int64)
    out[pref == a] = FIRST
    out[pref == b] = SECOND
    stray = (pref >= 0) & (pref != a) & (pref != b)
    if stray.any():
        at = int(np.flatnonzero(stray)[0])
        raise ValueError(
            f"vote {at} prefers response {int(pref[at])}, which is neither {int(a[at])} nor "
            f"{int(b[at])}."
        )
    return out


def label_counts(
    items: npt.ArrayLike, labels: npt.ArrayLike, n_labels: int
) -> tuple[IntArray, IntArray]:
    """Distinct item ids (sorted) and an (items, n_labels) table of how many votes chose each."""
    it, lab = ints(items, "items"), codes(labels, n_labels)
    same_length(items=it, labels=lab)
    uniq, inverse = np.unique(it, return_inverse=True)
    table = np.bincount(inverse * n_labels + lab, minlength=len(uniq) * n_labels)
    return uniq, table.reshape(len(uniq), n_labels).astype(np.int64)


@dataclass(frozen=True, slots=True)
class Majority:
    """Per item (sorted ids): the plurality label, or NO_MAJORITY where the top count is shared."""

    items: IntArray
    label: IntArray
    votes: IntArray
    share: FloatArray  # votes for the top label / votes


def majority(items: npt.ArrayLike, labels: npt.ArrayLike, n_labels: int) -> Majority:
    """Plurality per item over the label codes (a tie vote is a label like any other)."""
    uniq, table = label_counts(items, labels, n_labels)
    top = table.max(axis=1) if len(uniq) else np.zeros(0, dtype=np.int64)
    label = table.argmax(axis=1) if len(uniq) else np.zeros(0, dtype=np.int64)
    shared = (table == top[:, None]).sum(axis=1) > 1
    label = np.where(shared, NO_MAJORITY, label).astype(np.int64)
    votes = table.sum(axis=1)
    share = np.divide(top, votes, out=np.zeros(len(uniq)), where=votes > 0)
    return Majority(uniq, label, votes, share)
