"""Bias of a judge (or of humans): position consistency, first-position preference, length bias.

Verdicts are compared in response ids, never in displayed positions: a pairwise label is FIRST,
SECOND or TIE of the item's responses in a fixed order (labels.pairwise_codes), whatever order
they were shown in. Each rate comes with a 95% bootstrap interval over its votes or pairs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from app.quality.arrays import bools, floats, ints, same_length
from app.quality.bootstrap import N_BOOT, Estimate, mean


def position_consistency(
    verdict: npt.ArrayLike, swapped_verdict: npt.ArrayLike, *, n_boot: int = N_BOOT, seed: int = 0
) -> Estimate:
    """Share of swapped pairs whose two verdicts agree (the same response, or tie both times).

    `verdict[i]` and `swapped_verdict[i]` are one judge's labels on one item shown in both
    orders; 1.0 means the judge never changed its mind when the order changed.
    """
    first, second = ints(verdict, "verdict"), ints(swapped_verdict, "swapped_verdict")
    same_length(verdict=first, swapped_verdict=second)
    return mean((first == second).astype(np.float64), n_boot=n_boot, seed=seed)


def first_position_rate(
    chose_shown_first: npt.ArrayLike, *, n_boot: int = N_BOOT, seed: int = 0
) -> Estimate:
    """Share of decisive votes that went to the response shown first (0.5: no position bias).

    Ties are left out by the caller: one boolean per decisive vote.
    """
    chose = bools(chose_shown_first, "chose_shown_first")
    return mean(chose.astype(np.float64), n_boot=n_boot, seed=seed)


def length_bias(
    winner_length: npt.ArrayLike,
    loser_length: npt.ArrayLike,
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> Estimate:
    """Share of decisive votes won by the longer response (0.5: length plays no part).

    One row per decisive vote (ties left out by the caller); votes between responses of equal
    length say nothing about length and are dropped.
    """
    win, lose = floats(winner_length, "winner_length"), floats(loser_length, "loser_length")
    same_length(winner_length=win, loser_length=lose)
    differs = win != lose
    return mean((win[differs] > lose[differs]).astype(np.float64), n_boot=n_boot, seed=seed)
