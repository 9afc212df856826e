"""Array types and input checks shared by the statistics: one vote, one row, columnar."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def ints(values: npt.ArrayLike, name: str) -> IntArray:
    """A 1-D int64 array, or ValueError naming the argument."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional.")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold integers.")
    if arr.dtype.kind == "f" and not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        raise ValueError(f"{name} must hold integers.")
    return arr.astype(np.int64, copy=False)


def floats(values: npt.ArrayLike, name: str) -> FloatArray:
    """A 1-D float64 array of finite numbers, or ValueError naming the argument."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional.")
    if arr.size and arr.dtype.kind not in "iufb":
        raise ValueError(f"{name} must hold numbers.")
    out = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must hold finite numbers.")
    return out


def bools(values: npt.ArrayLike, name: str) -> BoolArray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional.")
    if (
        arr.size
        and arr.dtype.kind != "b"
        and (arr.dtype.kind not in "iu" or not np.isin(arr, (0, 1)).all())
    ):
        raise ValueError(f"{name} must hold booleans.")
    return arr.astype(np.bool_, copy=False)


def same_length(**arrays: npt.NDArray[Any]) -> int:
    """The common length of the arrays, or ValueError listing the lengths."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"the arrays must have one length each ({listed}).")
    return next(iter(lengths.values()), 0)


def codes(labels: npt.ArrayLike, n_labels: int, name: str = "labels") -> IntArray:
    """Label codes in [0, n_labels), or ValueError."""
    arr = ints(labels, name)
    if n_labels < 1:
        raise ValueError("n_labels must be at least 1.")
    if arr.size and (arr.min() < 0 or arr.max() >= n_labels):
        raise ValueError(f"{name} must be codes from 0 to {n_labels - 1}.")
    return arr


def row_keys(*columns: IntArray) -> IntArray:
    """One int64 per row that sorts like the rows (lexicographically), for fast 1-D uniques.

    The columns are packed as digits of a mixed-radix number when their ranges allow it
    (np.unique over rows is several times slower); otherwise each row's rank among the
    distinct rows serves as its key.
    """
    n = len(columns[0]) if columns else 0
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    lows = [int(c.min()) for c in columns]
    spans = [int(c.max()) - low + 1 for c, low in zip(columns, lows, strict=True)]
    capacity = 1
    for span in spans:
        capacity *= span
    if capacity >= 1 << 62:
        _, rank = np.unique(np.column_stack(columns), axis=0, return_inverse=True)
        return rank.reshape(-1).astype(np.int64)
    key = np.zeros(n, dtype=np.int64)
    for column, low, span in zip(columns, lows, spans, strict=True):
        key = key * span + (column - low)
    return key
