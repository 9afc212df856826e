"""Consensus across votes, and its agreement: majority, Borda count, span merging, mean ratings.

Plain values in and out (response ids, orders, spans), so exports and statistics share it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any


@dataclass(frozen=True, slots=True)
class Majority:
    """The outcome of a pairwise vote; winner is None for a tie."""

    winner: int | None
    loser: int | None
    for_winner: int
    for_loser: int
    ties: int

    @property
    def n(self) -> int:
        return self.for_winner + self.for_loser + self.ties

    @property
    def agreement(self) -> float:
        """Share of all votes (tie votes included) that went to the outcome."""
        top = max(self.for_winner, self.ties) if self.winner is None else self.for_winner
        return top / self.n if self.n else 0.0


def majority(preferred: Sequence[int | None], first: int, second: int) -> Majority:
    """Plurality over {first, second, tie}.

    The outcome is a tie when both responses got as many votes, or when tie votes outnumber
    the votes of each response; otherwise the response with more votes wins.
    """
    a = b = 0
    for p in preferred:
        if p == first:
            a += 1
        elif p == second:
            b += 1
    t = len(preferred) - a - b
    if a == b or t > max(a, b):
        return Majority(None, None, max(a, b), min(a, b), t)
    if a > b:
        return Majority(first, second, a, b, t)
    return Majority(second, first, b, a, t)


def borda(orders: Iterable[Sequence[int]], ids: Sequence[int]) -> dict[int, int]:
    """Borda points: in an order of k responses the best gets k-1, the last 0."""
    points = dict.fromkeys(ids, 0)
    for order in orders:
        k = len(order)
        for rank, rid in enumerate(order):
            points[rid] += k - 1 - rank
    return points


def consensus_order(points: Mapping[int, int], ids: Sequence[int]) -> list[int]:
    """Response ids best first by Borda points; equal points keep the import order."""
    position = {rid: n for n, rid in enumerate(ids)}
    return sorted(ids, key=lambda rid: (-points[rid], position[rid]))


def ranks(order: Sequence[int]) -> dict[int, int]:
    """Response id -> 0-based rank in one order."""
    return {rid: n for n, rid in enumerate(order)}


def pair_agreement(order: Sequence[int], voter_ranks: Sequence[Mapping[int, int]]) -> float:
    """Mean, over response pairs, of the share of votes that order the pair as `order` does."""
    if not voter_ranks or len(order) < 2:
        return 1.0
    agree = total = 0
    for x, y in combinations(order, 2):
        for r in voter_ranks:
            agree += r[x] < r[y]
        total += len(voter_ranks)
    return agree / total


def ranking_pairs(order: Sequence[int], mode: str) -> list[tuple[int, int]]:
    """(better, worse) index pairs of an order: all, adjacent, or best against each other."""
    k = len(order)
    if mode == "adjacent":
        return [(i, i + 1) for i in range(k - 1)]
    if mode == "best_vs_rest":
        return [(0, j) for j in range(1, k)]
    return list(combinations(range(k), 2))


def _union(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching [start, end) intervals merged, sorted."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def _by_label(spans: Iterable[Mapping[str, Any]]) -> dict[str, list[tuple[int, int]]]:
    grouped: dict[str, list[tuple[int, int]]] = {}
    for s in spans:
        grouped.setdefault(s["label"], []).append((s["start"], s["end"]))
    return {label: _union(iv) for label, iv in grouped.items()}


def merge_spans(
    per_vote: Sequence[Sequence[Mapping[str, Any]]], threshold: float
) -> list[dict[str, Any]]:
    """Merge every annotator's spans by label overlap.

    Per label, each code point counts the annotators who marked it with that label (an
    annotator's own overlapping spans count once). The merged spans are the maximal runs where
    that count reaches `threshold` of the annotators (at least one); each carries the highest
    count inside it (`votes`) and that count's share of the annotators (`agreement`).
    """
    n = len(per_vote)
    if n == 0:
        return []
    need = max(1, math.ceil(threshold * n - 1e-9))
    events: dict[str, list[tuple[int, int]]] = {}
    for spans in per_vote:
        for label, intervals in _by_label(spans).items():
            ev = events.setdefault(label, [])
            for start, end in intervals:
                ev.append((start, 1))
                ev.append((end, -1))
    merged: list[dict[str, Any]] = []
    for label, ev in events.items():
        ev.sort()
        count = peak = i = 0
        run_start: int | None = None
        while i < len(ev):
            pos = ev[i][0]
            while i < len(ev) and ev[i][0] == pos:  # every start and end at this offset at once
                count += ev[i][1]
                i += 1
            if count >= need:
                if run_start is None:
                    run_start, peak = pos, count
                peak = max(peak, count)
            elif run_start is not None:
                merged.append(
                    {
                        "start": run_start,
                        "end": pos,
                        "label": label,
                        "votes": peak,
                        "agreement": peak / n,
                    }
                )
                run_start = None
    merged.sort(key=lambda s: (s["start"], s["end"], s["label"]))
    return merged


def _overlap(a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]]) -> int:
    total = i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            total += hi - lo
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def span_agreement(per_vote: Sequence[Sequence[Mapping[str, Any]]]) -> float:
    """Mean pairwise F1 between annotators over (code point, label) marks; 1.0 when alone.

    Two annotators who both marked nothing agree fully.
    """
    marks = [_by_label(spans) for spans in per_vote]
    if len(marks) < 2:
        return 1.0
    scores = []
    for u, v in combinations(marks, 2):
        size_u = sum(e - s for iv in u.values() for s, e in iv)
        size_v = sum(e - s for iv in v.values() for s, e in iv)
        if size_u + size_v == 0:
            scores.append(1.0)
            continue
        both = sum(_overlap(iv, v.get(label, [])) for label, iv in u.items())
        scores.append(2 * both / (size_u + size_v))
    return sum(scores) / len(scores)


@dataclass(frozen=True, slots=True)
class RatingSide:
    """Ratings against a threshold: the label (above?), its support, and the mean."""

    above: bool | None  # None: the mean sits on the threshold
    mean: float
    agreement: float


def rating_side(ratings: Sequence[int], threshold: float) -> RatingSide:
    mean = sum(ratings) / len(ratings)
    if mean == threshold:
        return RatingSide(None, mean, 0.0)
    above = mean > threshold
    same = sum((r > threshold) if above else (r < threshold) for r in ratings)
    return RatingSide(above, mean, same / len(ratings))
