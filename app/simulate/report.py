"""What a run of simulated annotators did, measured against the truth: counts, accuracy,
agreement between annotators, and position bias, each beside what the model expected."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any


@dataclass(frozen=True, slots=True)
class Vote:
    """One submitted annotation, as the annotator made it."""

    annotator: int
    item: str  # the item's external_id (or "item:<id>")
    shown: list[int]  # response ids in the order shown
    order: list[int]  # the annotator's order, best first (pairwise: chosen, other)
    truth: list[int]  # the true order, best first
    annotation_id: int
    over_quota: bool
    sure: bool
    think_s: float
    expected_accuracy: float
    expected_first: float | None  # pairwise only

    def pairs_right(self) -> tuple[int, int]:
        """(pairs of responses ordered as in the truth, pairs)."""
        mine = {rid: n for n, rid in enumerate(self.order)}
        right = total = 0
        for i, x in enumerate(self.truth):
            for y in self.truth[i + 1 :]:
                total += 1
                right += mine[x] < mine[y]
        return right, total

    @property
    def chose_first(self) -> bool:
        return self.order[0] == self.shown[0]


def _same_pairs(a: Vote, b: Vote) -> float:
    """Share of response pairs two votes on one item order the same way."""
    pa = {rid: n for n, rid in enumerate(a.order)}
    pb = {rid: n for n, rid in enumerate(b.order)}
    ids = sorted(pa)
    pairs = list(combinations(ids, 2))
    same = sum((pa[x] < pa[y]) == (pb[x] < pb[y]) for x, y in pairs)
    return same / len(pairs) if pairs else 1.0


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class AnnotatorRun:
    index: int
    name: str
    expected_accuracy: float
    submitted: int = 0
    skipped: int = 0
    no_truth: int = 0
    over_quota: int = 0
    stopped: str = "not started"
    error: str | None = None
    votes: list[Vote] = field(default_factory=list)

    def accuracy(self) -> float | None:
        right = total = 0
        for v in self.votes:
            r, t = v.pairs_right()
            right += r
            total += t
        return right / total if total else None


@dataclass
class RunStats:
    project_id: int
    target: tuple[str, float]
    expected: dict[str, float]  # the panel's accuracy and agreement over the truth's items
    annotators: list[AnnotatorRun]
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def votes(self) -> list[Vote]:
        return [v for a in self.annotators for v in a.votes]

    def counts(self) -> dict[str, int]:
        return {
            "submitted": sum(a.submitted for a in self.annotators),
            "skipped": sum(a.skipped for a in self.annotators),
            "no_truth": sum(a.no_truth for a in self.annotators),
            "over_quota": sum(a.over_quota for a in self.annotators),
            "errors": sum(a.error is not None for a in self.annotators),
        }

    def accuracy(self) -> dict[str, Any]:
        """Share of response pairs ordered as in the truth (pairwise: votes right), with a
        Wilson 95% interval, and the model's expectation for these very votes."""
        right = total = 0
        expected = 0.0
        for v in self.votes:
            r, t = v.pairs_right()
            right += r
            total += t
            expected += v.expected_accuracy * t
        low, high = wilson(right, total)
        return {
            "value": right / total if total else None,
            "low": None if math.isnan(low) else low,
            "high": None if math.isnan(high) else high,
            "pairs": total,
            "expected_for_these_votes": expected / total if total else None,
        }

    def agreement(self) -> dict[str, Any]:
        """Mean over pairs of annotators' votes on one item of the share of response pairs they
        order alike (pairwise: same choice)."""
        by_item: dict[str, list[Vote]] = defaultdict(list)
        for v in self.votes:
            by_item[v.item].append(v)
        total = 0.0
        pairs = items = 0
        for votes in by_item.values():
            if len(votes) < 2:
                continue
            items += 1
            for a, b in combinations(votes, 2):
                total += _same_pairs(a, b)
                pairs += 1
        return {"value": total / pairs if pairs else None, "vote_pairs": pairs, "items": items}

    def first_position(self) -> dict[str, Any]:
        """Pairwise: share of votes for the response shown first, and the model's expectation."""
        votes = [v for v in self.votes if v.expected_first is not None]
        if not votes:
            return {"value": None, "votes": 0, "expected_for_these_votes": None}
        return {
            "value": sum(v.chose_first for v in votes) / len(votes),
            "votes": len(votes),
            "expected_for_these_votes": sum(v.expected_first or 0.0 for v in votes) / len(votes),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted,
            "target": {"measure": self.target[0], "value": self.target[1]},
            "expected": self.expected,
            **self.counts(),
            "accuracy": self.accuracy(),
            "agreement": self.agreement(),
            "first_position": self.first_position(),
            "annotators": [
                {
                    "name": a.name,
                    "expected_accuracy": round(a.expected_accuracy, 4),
                    "accuracy": a.accuracy(),
                    "submitted": a.submitted,
                    "skipped": a.skipped,
                    "no_truth": a.no_truth,
                    "over_quota": a.over_quota,
                    "stopped": a.stopped,
                    "error": a.error,
                }
                for a in self.annotators
            ],
        }


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_report(stats: RunStats) -> list[str]:
    """The lines `tandem simulate annotators` prints."""
    counts = stats.counts()
    acc, agree, first = stats.accuracy(), stats.agreement(), stats.first_position()
    measure, target = stats.target
    lines = [
        f"project {stats.project_id}: {len(stats.annotators)} simulated annotators,"
        f" {stats.seconds:.1f} s",
        f"  submitted {counts['submitted']}, skipped {counts['skipped']},"
        f" no truth {counts['no_truth']}, over quota {counts['over_quota']}",
        f"  accuracy vs truth {_num(acc['value'])} (95% {_num(acc['low'])}-{_num(acc['high'])},"
        f" {acc['pairs']} pairs); expected {_num(acc['expected_for_these_votes'])},"
        f" configured {_num(stats.expected['accuracy'])}"
        + (" (target)" if measure == "accuracy" else ""),
        f"  agreement {_num(agree['value'])} ({agree['vote_pairs']} vote pairs on"
        f" {agree['items']} items); configured {_num(stats.expected['agreement'])}"
        + (f" (target {target})" if measure == "agreement" else ""),
    ]
    if first["votes"]:
        lines.append(
            f"  first shown chosen {_num(first['value'])} of {first['votes']} votes;"
            f" expected {_num(first['expected_for_these_votes'])}"
        )
    width = max(len(a.name) for a in stats.annotators)
    lines.append(f"  {'annotator':<{width}}  accuracy  expected  submitted  skipped  stopped")
    for a in stats.annotators:
        lines.append(
            f"  {a.name:<{width}}  {_num(a.accuracy()):>8}  {_num(a.expected_accuracy):>8}"
            f"  {a.submitted:>9}  {a.skipped:>7}  {a.stopped}"
        )
    return lines
