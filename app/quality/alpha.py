"""Krippendorff's alpha (nominal, ordinal, interval) through the `krippendorff` package.

The point estimate is the package's. Alpha depends on the data only through the coincidence
matrix, a sum over items of each item's own coincidences, so the bootstrap resamples items by
resampling those per-item matrices (bootstrap.py) and recomputes alpha from the summed matrix
with the package's formula, vectorised over replicates; a test holds the two equal.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from app.quality.arrays import FloatArray, IntArray, ints, same_length
from app.quality.bootstrap import N_BOOT, Estimate, bootstrap, finite
from app.quality.labels import label_counts

Level = Literal["nominal", "ordinal", "interval"]
LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval")


def _domain(
    values: npt.NDArray[np.generic], domain: npt.ArrayLike | None, level: Level
) -> FloatArray:
    if domain is None:
        return np.asarray(np.unique(values), dtype=np.float64)
    dom = np.asarray(domain, dtype=np.float64)
    if dom.ndim != 1 or len(np.unique(dom)) != len(dom):
        raise ValueError("domain must list distinct values.")
    if level != "nominal" and np.any(np.diff(dom) <= 0):
        raise ValueError(f"an {level} domain must be in increasing order.")
    return dom


def coincidence_rows(counts: IntArray) -> tuple[FloatArray, IntArray]:
    """Distinct per-item coincidence matrices (flattened V*V rows) and how many items have each.

    Only items with two values or more are pairable; each contributes
    (n_c n_k - [c = k] n_c) / (m - 1) to cell (c, k), where m is its number of values.
    """
    m = counts.sum(axis=1)
    patterns, freq = np.unique(counts[m >= 2], axis=0, return_counts=True)
    v = counts.shape[1]
    pm = patterns.sum(axis=1).astype(np.float64)
    outer = patterns[:, :, None] * patterns[:, None, :] - patterns[:, :, None] * np.eye(v)
    rows = (outer / (pm - 1.0)[:, None, None]).reshape(len(patterns), v * v)
    return rows, freq.astype(np.int64)


def alpha_from_coincidences(o: FloatArray, level: Level, domain: FloatArray) -> FloatArray:
    """Alpha for each summed coincidence matrix (B, V*V): 1 - sum(o*d) / sum(e*d)."""
    v = len(domain)
    o = o.reshape(-1, v, v)
    n_v = o.sum(axis=1)
    n = n_v.sum(axis=1)
    e = (n_v[:, :, None] * n_v[:, None, :] - n_v[:, :, None] * np.eye(v)) / (n - 1.0)[:, None, None]
    if level == "nominal":
        d = np.broadcast_to(1.0 - np.eye(v), o.shape)
    elif level == "interval":
        d = np.broadcast_to((domain[:, None] - domain[None, :]) ** 2, o.shape)
    else:
        # Ordinal: (sum of n_g for g between c and k, minus half of n_c and n_k) squared; it
        # depends on each replicate's marginals.
        idx = np.arange(v)
        lo, hi = np.minimum.outer(idx, idx), np.maximum.outer(idx, idx)
        cum = np.concatenate([np.zeros((len(n_v), 1)), np.cumsum(n_v, axis=1)], axis=1)
        between = cum[:, hi + 1] - cum[:, lo]
        d = (between - (n_v[:, lo] + n_v[:, hi]) / 2.0) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(1.0 - (o * d).sum(axis=(1, 2)) / (e * d).sum(axis=(1, 2)))


def krippendorff_alpha(
    items: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    level: Level = "nominal",
    domain: npt.ArrayLike | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> Estimate:
    """Alpha over votes given as (item, value) pairs, one per vote; n counts pairable items.

    `values` are label codes (nominal) or numbers on the scale (ordinal, interval), e.g.
    ratings 1..7; `domain` lists the scale's values (default: those that occur). Undefined
    (None) when no item has two votes or when every vote has the same value.
    """
    import krippendorff

    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}.")
    it = ints(items, "items")
    vals = np.asarray(values)
    if vals.ndim != 1 or (vals.size and vals.dtype.kind not in "iuf"):
        raise ValueError("values must be a one-dimensional array of numbers.")
    same_length(items=it, values=vals)
    if vals.size and not np.all(np.isfinite(vals)):
        raise ValueError("values must be finite numbers.")
    dom = _domain(vals, domain, level)
    order = np.argsort(dom)
    position = np.searchsorted(dom[order], vals)
    position = np.minimum(position, len(dom) - 1)
    if vals.size and not np.all(dom[order][position] == vals):
        raise ValueError("values must all be in the domain.")
    coded = order[position] if vals.size else position
    _, counts = label_counts(it, coded, max(len(dom), 1))
    pairable = counts[counts.sum(axis=1) >= 2]
    if len(pairable) == 0:
        return Estimate(None, None, None, 0)
    if len(dom) < 2 or np.count_nonzero(pairable.sum(axis=0)) < 2:
        return Estimate(None, None, None, len(pairable))  # no variation: alpha is undefined
    with np.errstate(divide="ignore", invalid="ignore"):
        value = krippendorff.alpha(
            value_counts=pairable,
            value_domain=dom if level == "interval" else np.arange(len(dom)),
            level_of_measurement=level,
        )
    rows, freq = coincidence_rows(pairable)
    return bootstrap(
        rows,
        lambda o: alpha_from_coincidences(o, level, dom),
        counts=freq,
        value=finite(value),
        n_boot=n_boot,
        seed=seed,
    )
