"""A judge measured against people on one project: agreement, kappa, biases, calibration, cost.

Computed on read from the judge's outputs (its latest template version per item) and the
human votes (through the shared vote reader), on the items that have both. Pairwise labels are
coded in response ids (first imported, second, tie), never screen positions.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.annotations.models import AnnotationSource
from app.annotations.votes import VoteFilter, read_votes, vote_kind
from app.projects.rules import TaskKind
from app.quality import aggregate, bias, calibration, kappa
from app.quality.bootstrap import EMPTY, Estimate, mean
from app.quality.percentiles import p50_p95
from app.quality.svg import ReliabilityPoint, reliability_diagram

_OUTPUTS = """
    SELECT DISTINCT ON (o.item_id) o.item_id, o.status, o.probability, o.consistent, o.cost,
           o.latency_s, a.payload
    FROM judge_outputs o LEFT JOIN annotations a ON a.id = o.annotation_id
    WHERE o.project_id = :pid AND o.judge_id = :jid
    ORDER BY o.item_id, o.template_id DESC
"""
_RESPONSES = """
    SELECT r.item_id, array_agg(r.id ORDER BY r.position), array_agg(char_length(r.text)
           ORDER BY r.position)
    FROM responses r JOIN items i ON i.id = r.item_id WHERE i.project_id = :pid
    GROUP BY r.item_id
"""


@dataclass(slots=True)
class JudgeMetrics:
    judge_id: int
    project_id: int
    kind: str
    outputs: int = 0  # items the judge answered (any status)
    votes: int = 0  # of which parsed into votes
    overlap: int = 0  # items with a judge vote and human votes
    agreement: Estimate = EMPTY  # with the human majority (share of overlap items)
    kappa: Estimate = EMPTY  # Cohen's kappa with the human majority (pairwise, critique)
    position_consistency: Estimate = EMPTY  # pairwise: share of swaps that agree
    length_bias_judge: Estimate = EMPTY  # pairwise: how often the longer response wins
    length_bias_humans: Estimate = EMPTY
    brier: Estimate = EMPTY  # pairwise: probability vs the human majority
    ece: float | None = None
    reliability: list[dict[str, float | int]] = field(default_factory=list)
    unparsable_rate: float | None = None
    inconsistent_rate: float | None = None
    cost_total: float = 0.0
    cost_per_item: float | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.as_dict() if isinstance(value, Estimate) else value
        return out

    def calibration_svg(self) -> str:
        points = [
            ReliabilityPoint(float(b["mean_prob"]), float(b["observed"]), int(b["count"]))
            for b in self.reliability
        ]
        return reliability_diagram(
            "Calibration",
            "The judge's probability that a response is better against how often the human "
            "majority preferred it; the dashed diagonal is perfect calibration.",
            points,
            chart_id="judge-calibration",
        )


def _code(preferred: int | None, first: int) -> int:
    return 2 if preferred is None else 0 if preferred == first else 1


def judge_metrics(session: Session, project_id: int, judge_id: int, kind: str) -> JudgeMetrics:
    m = JudgeMetrics(judge_id=judge_id, project_id=project_id, kind=kind)
    rows = session.execute(text(_OUTPUTS), {"pid": project_id, "jid": judge_id}).all()
    m.outputs = len(rows)
    if not rows:
        return m
    m.unparsable_rate = sum(r.status == "unparsed" for r in rows) / len(rows)
    m.inconsistent_rate = sum(r.status == "inconsistent" for r in rows) / len(rows)
    m.cost_total = float(sum(r.cost for r in rows))
    m.cost_per_item = m.cost_total / len(rows)
    latency = p50_p95([r.latency_s for r in rows])
    m.latency_p50_s, m.latency_p95_s = latency.p50, latency.p95
    judged = {r.item_id: r for r in rows}
    m.votes = sum(r.payload is not None for r in rows)
    conn = session.connection()
    human = read_votes(
        conn, project_id, vote_kind(TaskKind(kind)), VoteFilter(source=AnnotationSource.human)
    )
    by_item: dict[int, list[Any]] = defaultdict(list)
    for v in human:
        by_item[v.item_id].append(v)
    responses = {
        r[0]: (list(r[1]), list(r[2]))
        for r in session.execute(text(_RESPONSES), {"pid": project_id}).all()
    }
    if kind == "pairwise":
        _pairwise(m, judged, by_item, responses)
    elif kind == "ranking":
        _ranking(m, judged, by_item, responses)
    elif kind == "critique":
        _critique(m, judged, by_item)
    else:
        _span(m, judged, by_item)
    return m


def _pairwise(
    m: JudgeMetrics,
    judged: dict[int, Any],
    humans: dict[int, list[Any]],
    responses: dict[int, tuple[list[int], list[int]]],
) -> None:
    swaps = [r.consistent for r in judged.values() if r.consistent is not None]
    if swaps:
        m.position_consistency = _share(swaps)
    j_codes: list[int] = []
    h_codes: list[int] = []
    probs: list[float] = []
    outcomes: list[bool] = []
    j_win: list[int] = []
    j_lose: list[int] = []
    h_win: list[int] = []
    h_lose: list[int] = []
    for item_id, (ids, lengths) in responses.items():
        first, second = ids[0], ids[1]
        length = dict(zip(ids, lengths, strict=True))
        out = judged.get(item_id)
        if out is not None and out.payload is not None and out.payload.get("preferred"):
            winner = out.payload["preferred"]
            j_win.append(length[winner])
            j_lose.append(length[second if winner == first else first])
        votes = humans.get(item_id)
        if not votes:
            continue
        major = aggregate.majority([v.preferred for v in votes], first, second)
        if major.winner is not None and major.loser is not None:
            h_win.append(length[major.winner])
            h_lose.append(length[major.loser])
        if out is None:
            continue
        if out.payload is not None:
            j_codes.append(_code(out.payload.get("preferred"), first))
            h_codes.append(_code(major.winner, first))
        if out.probability is not None and major.winner is not None:
            probs.append(float(out.probability))
            outcomes.append(major.winner == first)
    m.overlap = len(j_codes)
    if j_codes:
        m.agreement = _share([a == b for a, b in zip(j_codes, h_codes, strict=True)])
        m.kappa = kappa.cohen_kappa(j_codes, h_codes, 3)
    if j_win:
        m.length_bias_judge = bias.length_bias(j_win, j_lose)
    if h_win:
        m.length_bias_humans = bias.length_bias(h_win, h_lose)
    if probs:
        m.brier = calibration.brier_score(probs, outcomes)
        bins = calibration.reliability_curve(probs, outcomes)
        m.ece = calibration.expected_calibration_error(bins)
        m.reliability = [
            {
                "low": b.low,
                "high": b.high,
                "count": b.count,
                "mean_prob": b.mean_prob,
                "observed": b.observed,
            }
            for b in bins
        ]


def _share(hits: Sequence[bool]) -> Estimate:
    return mean([1.0 if h else 0.0 for h in hits])


def _ranking(
    m: JudgeMetrics,
    judged: dict[int, Any],
    humans: dict[int, list[Any]],
    responses: dict[int, tuple[list[int], list[int]]],
) -> None:
    """Agreement: per item, the share of response pairs the judge orders as the human Borda
    consensus does, averaged over items."""
    shares: list[float] = []
    for item_id, out in judged.items():
        votes = humans.get(item_id)
        if out.payload is None or not votes:
            continue
        ids = responses[item_id][0]
        consensus = aggregate.consensus_order(aggregate.borda([v.order for v in votes], ids), ids)
        mine = aggregate.ranks(out.payload["order"])
        pairs = list(combinations(consensus, 2))
        shares.append(sum(mine[x] < mine[y] for x, y in pairs) / len(pairs))
    m.overlap = len(shares)
    if shares:
        m.agreement = mean(shares)


def _critique(m: JudgeMetrics, judged: dict[int, Any], humans: dict[int, list[Any]]) -> None:
    """Agreement: the judge's rating equals the human median (rounded); quadratic kappa."""
    mine: list[int] = []
    theirs: list[int] = []
    for item_id, out in judged.items():
        ratings = [v.rating for v in humans.get(item_id, []) if v.rating is not None]
        if out.payload is None or out.payload.get("rating") is None or not ratings:
            continue
        mine.append(int(out.payload["rating"]) - 1)
        theirs.append(round(statistics.median(ratings)) - 1)
    m.overlap = len(mine)
    if mine:
        m.agreement = _share([a == b for a, b in zip(mine, theirs, strict=True)])
        m.kappa = kappa.cohen_kappa(mine, theirs, 7, weights="quadratic")


def _span(m: JudgeMetrics, judged: dict[int, Any], humans: dict[int, list[Any]]) -> None:
    """Agreement: per item, the F1 of the code points the judge marked against those the human
    majority marked (by label), averaged over items."""
    scores: list[float] = []
    for item_id, out in judged.items():
        votes = humans.get(item_id)
        if out.payload is None or not votes:
            continue
        merged = aggregate.merge_spans([v.spans for v in votes], 0.5)
        a = {(s["label"], p) for s in out.payload["spans"] for p in range(s["start"], s["end"])}
        b = {(s["label"], p) for s in merged for p in range(s["start"], s["end"])}
        if not a and not b:
            scores.append(1.0)
            continue
        both = len(a & b)
        scores.append(2 * both / (len(a) + len(b)))
    m.overlap = len(scores)
    if scores:
        m.agreement = mean(scores)
