"""p50/p95 summaries (judge latency, cost per call, time spent per task)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.quality.arrays import floats


@dataclass(frozen=True, slots=True)
class Percentiles:
    p50: float | None
    p95: float | None
    n: int


def p50_p95(values: npt.ArrayLike) -> Percentiles:
    """Median and 95th percentile (linear interpolation, numpy's default); None when empty."""
    x = floats(values, "values")
    if x.size == 0:
        return Percentiles(None, None, 0)
    p50, p95 = np.percentile(x, [50.0, 95.0])
    return Percentiles(float(p50), float(p95), int(x.size))
