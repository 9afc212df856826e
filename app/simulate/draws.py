"""Seeded random draws that give the same values on every Python version.

Python promises only that `Random.random()` repeats for a given seed across versions (choice,
shuffle, gauss and the others may change), so every draw here is built on `random()` alone, and
each stream is seeded with a string naming what it is for: a world item, an annotator's
decision on an item. Draws of one purpose never shift the draws of another.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


class Draws:
    """One deterministic stream, named by its parts: Draws(seed, "item", 17)."""

    __slots__ = ("_rng",)

    def __init__(self, *parts: object) -> None:
        self._rng = random.Random("|".join(str(p) for p in parts))

    def uniform(self, low: float = 0.0, high: float = 1.0) -> float:
        return low + (high - low) * self._rng.random()

    def chance(self, p: float) -> bool:
        """True with probability p."""
        return self._rng.random() < p

    def index(self, n: int) -> int:
        """0 <= i < n, uniformly."""
        i = int(self._rng.random() * n)
        return i if i < n else n - 1

    def pick(self, options: Sequence[T]) -> T:
        return options[self.index(len(options))]

    def weighted(self, options: Sequence[T], weights: Sequence[float]) -> T:
        total = sum(weights)
        target = self._rng.random() * total
        for option, weight in zip(options, weights, strict=True):
            target -= weight
            if target < 0:
                return option
        return options[-1]

    def gauss(self) -> float:
        """A standard normal draw (Box-Muller)."""
        u = 1.0 - self._rng.random()  # (0, 1]: log(0) cannot happen
        return math.sqrt(-2.0 * math.log(u)) * math.cos(2.0 * math.pi * self._rng.random())

    def gumbel(self) -> float:
        u = 1.0 - self._rng.random()
        return -math.log(-math.log(u)) if u < 1.0 else 40.0

    def shuffled(self, values: Sequence[T]) -> list[T]:
        """A uniformly random permutation."""
        return self.sample(values, len(values))

    def sample(self, values: Sequence[T], k: int) -> list[T]:
        """k distinct values in random order (the first k steps of a Fisher-Yates shuffle)."""
        out = list(values)
        n = len(out)
        rand = self._rng.random
        for i in range(min(k, n)):
            j = i + int(rand() * (n - i))
            j = j if j < n else n - 1
            out[i], out[j] = out[j], out[i]
        return out[:k]

    def lognormal(self, median: float, sigma: float) -> float:
        return median * math.exp(sigma * self.gauss())


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))
