"""Review candidates and final labels of span and critique items.

Pairwise and ranking items are divided when their top answer has a small share of the votes
(counted in SQL, see service._CANDIDATES). Spans and critiques have no answer to count, so the
stats job scores each item's human annotations here instead:

* spans: the mean pairwise F1 over (code point, label) marks, the `agreement` that span exports
  carry (aggregate.span_agreement);
* critiques: 1 - the mean pairwise gap between ratings / 6 (the width of the 1..7 scale) when two
  or more votes rate the response; else the mean pairwise word overlap (Jaccard) of the
  critiques, a rough measure of saying the same thing.

An item enters the queue with that score as its `top_share` (below the project's
`review_below`, it is listed) unless its votes agree fully. Pure Python: the web process may
import this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from app.annotations.votes import CritiqueVote, SpanVote
from app.quality import aggregate as agg

RATING_RANGE = 6  # 7 - 1: the widest gap between two ratings
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Candidate:
    item_id: int
    votes: int
    top_share: float  # the item's agreement, 0..1
    # Annotation id -> a short summary (spans: how many marked; critiques: the rating or None).
    answers: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "votes": self.votes,
            "top_share": self.top_share,
            "answers": self.answers,
        }


def _by_item(votes: Iterable[Any]) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = {}
    for v in votes:
        grouped.setdefault(v.item_id, []).append(v)
    return grouped


def span_candidates(human_votes: Iterable[SpanVote]) -> list[Candidate]:
    out = []
    for item_id, votes in _by_item(human_votes).items():
        if len(votes) < 2:
            continue
        score = agg.span_agreement([v.spans for v in votes])
        if score < 1.0:
            answers = {str(v.annotation_id): len(v.spans) for v in votes}
            out.append(Candidate(item_id, len(votes), score, answers))
    return out


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def critique_agreement(ratings: Sequence[int | None], critiques: Sequence[str]) -> float:
    """1 - mean pairwise rating gap / 6 over the votes that rate (two or more); else the mean
    pairwise Jaccard overlap of the critiques' word sets (two empty sets agree)."""
    rated = [r for r in ratings if r is not None]
    if len(rated) >= 2:
        gaps = [abs(a - b) for a, b in combinations(rated, 2)]
        return 1.0 - sum(gaps) / len(gaps) / RATING_RANGE
    sets = [_words(c) for c in critiques]
    if len(sets) < 2:
        return 1.0
    scores = [len(a & b) / len(a | b) if a | b else 1.0 for a, b in combinations(sets, 2)]
    return sum(scores) / len(scores)


def critique_candidates(human_votes: Iterable[CritiqueVote]) -> list[Candidate]:
    out = []
    for item_id, votes in _by_item(human_votes).items():
        if len(votes) < 2:
            continue
        score = critique_agreement([v.rating for v in votes], [v.critique for v in votes])
        if score < 1.0:
            answers = {str(v.annotation_id): v.rating for v in votes}
            out.append(Candidate(item_id, len(votes), score, answers))
    return out


def span_support(
    spans: Sequence[Mapping[str, Any]], per_vote: Sequence[Sequence[Mapping[str, Any]]]
) -> list[dict[str, Any]]:
    """A reviewer's spans in the merged-span shape of span exports: each with the number of
    votes that marked any of its code points with its label, and that share of the votes."""
    n = len(per_vote)
    out = []
    for s in sorted(spans, key=lambda s: (s["start"], s["end"], s["label"])):
        votes = sum(
            any(
                m["label"] == s["label"] and m["start"] < s["end"] and s["start"] < m["end"]
                for m in v
            )
            for v in per_vote
        )
        out.append(
            {
                "start": s["start"],
                "end": s["end"],
                "label": s["label"],
                "votes": votes,
                "agreement": votes / n if n else None,
            }
        )
    return out
