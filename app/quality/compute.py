"""A project's statistics, computed in one database snapshot: the stats job's work.

Worker-side: the estimators it calls import scipy, scikit-learn, krippendorff and crowd-kit
inside their functions, so this module is cheap to import but its `compute` is not for the web
process. The result is plain JSON (no NaN: undefined numbers are None) that the API serves and
the dashboard draws as it is.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from sqlalchemy import Connection, text

from app.annotations.models import AnnotationSource
from app.annotations.votes import (
    CRITIQUE,
    PAIRWISE,
    RANKING,
    SPAN,
    CritiqueVote,
    PairwiseVote,
    RankingVote,
    SpanVote,
    VoteKind,
    read_votes,
)
from app.projects.rules import TaskKind
from app.quality import bias, gold, kappa, labels, review
from app.quality.bootstrap import EMPTY, Estimate, finite
from app.quality.percentiles import p50_p95

# Fewer replicates than the library's default: the job refreshes often, and at a million votes
# 200 replicates keep each interval's end within a few thousandths of the 1,000-replicate one.
N_BOOT = 200
# Leaderboard fits are a logistic regression per replicate: 100 replicates keep the refresh
# of a million votes within a minute or so.
BOARD_N_BOOT = 100
MAX_DAYS = 60  # progress over time: the last days shown
MIN_PAIR_ITEMS = 10  # rater pairs need this many shared items for a Cohen's kappa
LOWEST_PAIRS = 20  # the least agreeing rater pairs listed, with intervals
MAX_ANNOTATORS = 500  # per-annotator rows kept in the snapshot (most active first)
HUMAN, AI = AnnotationSource.human, AnnotationSource.ai


def est(e: Estimate | None) -> dict[str, Any] | None:
    return None if e is None else e.as_dict()


@dataclass
class Meta:
    """Per annotation: what the vote records do not carry."""

    time_ms: dict[int, int] = field(default_factory=dict)
    gold_score: dict[int, float] = field(default_factory=dict)


@dataclass
class Resp:
    item: int
    position: int
    length: int
    model: str | None


@dataclass
class Snapshot:
    """Everything read from the database, in one REPEATABLE READ transaction."""

    project: dict[str, Any]
    counts: dict[str, Any]
    votes: list[Any]
    meta: Meta
    responses: dict[int, Resp]
    by_item: dict[int, list[int]]  # response ids in import order
    gold_answers: dict[int, Any]  # gold item -> its answer (positions in import order)
    judge_names: dict[int, str]
    lifts: dict[int, datetime]  # user -> when their last pause was lifted
    last_annotation_id: int


def _one(conn: Connection, sql: str, **params: Any) -> Any:
    return conn.execute(text(sql), params).scalar_one()


def read_snapshot(conn: Connection, project_id: int) -> Snapshot:
    p = conn.execute(
        text("SELECT id, name, kind, span_labels FROM projects WHERE id = :p"), {"p": project_id}
    ).one()
    kind = TaskKind(p.kind)
    pid = {"p": project_id}
    assignments: dict[str, int] = dict(
        conn.execute(
            text("SELECT status, count(*) FROM assignments WHERE project_id = :p GROUP BY 1"), pid
        ).all()
    )
    sources: dict[str, int] = dict(
        conn.execute(
            text("SELECT source, count(*) FROM annotations WHERE project_id = :p GROUP BY 1"), pid
        ).all()
    )
    items, complete, n_gold = conn.execute(
        text(
            "SELECT count(*), count(*) FILTER (WHERE remaining = 0), count(*) FILTER"
            " (WHERE is_gold) FROM items WHERE project_id = :p"
        ),
        pid,
    ).one()
    last = _one(
        conn, "SELECT coalesce(max(id), 0) FROM annotations WHERE project_id = :p", p=project_id
    )
    counts = {
        "items": items,
        "items_complete": complete,
        "gold_items": n_gold,
        "assignments": {
            s: int(assignments.get(s, 0)) for s in ("leased", "submitted", "skipped", "expired")
        },
        "annotations": {s.value: int(sources.get(s.value, 0)) for s in AnnotationSource},
    }
    reader: dict[TaskKind, VoteKind[Any]] = {
        TaskKind.pairwise: PAIRWISE,
        TaskKind.ranking: RANKING,
        TaskKind.span: SPAN,
    }
    votes: list[Any] = read_votes(conn, project_id, reader.get(kind, CRITIQUE))
    meta = Meta()
    for aid, ms, score in conn.execute(
        text(
            "SELECT id, time_spent_ms, gold_score FROM annotations WHERE project_id = :p"
            " AND (time_spent_ms IS NOT NULL OR gold_score IS NOT NULL)"
        ),
        pid,
    ):
        if ms is not None:
            meta.time_ms[aid] = ms
        if score is not None:
            meta.gold_score[aid] = score
    responses: dict[int, Resp] = {}
    by_item: dict[int, list[int]] = defaultdict(list)
    for rid, item, position, length, model in conn.execute(
        text(
            "SELECT r.id, r.item_id, r.position, char_length(r.text), r.model FROM responses r"
            " JOIN items i ON i.id = r.item_id WHERE i.project_id = :p"
            " ORDER BY r.item_id, r.position"
        ),
        pid,
    ):
        responses[rid] = Resp(item, position, length, model)
        by_item[item].append(rid)
    gold_answers: dict[int, Any] = dict(
        conn.execute(
            text("SELECT id, gold_answer FROM items WHERE project_id = :p AND is_gold"), pid
        ).all()
    )
    judge_ids = sorted({v.judge_id for v in votes if v.judge_id is not None})
    names: dict[int, str] = {}
    if judge_ids and _one(conn, "SELECT to_regclass('judges') IS NOT NULL"):
        names = dict(
            conn.execute(
                text("SELECT id, name::text FROM judges WHERE id = ANY(:ids)"), {"ids": judge_ids}
            ).all()
        )
    lifts: dict[int, datetime] = dict(
        conn.execute(
            text(
                "SELECT user_id, max(lifted_at) FROM annotator_pauses"
                " WHERE project_id = :p AND lifted_at IS NOT NULL GROUP BY user_id"
            ),
            pid,
        ).all()
    )
    return Snapshot(
        project={
            "id": p.id,
            "name": p.name,
            "kind": kind.value,
            "span_labels": list(p.span_labels),
        },
        counts=counts,
        votes=votes,
        meta=meta,
        responses=responses,
        by_item=dict(by_item),
        gold_answers=gold_answers,
        judge_names=names,
        lifts=lifts,
        last_annotation_id=int(last),
    )


# --- per kind: categorical codes, agreement, judges ------------------------------------------


@dataclass
class Coded:
    """Categorical votes (pairwise codes, critique ratings) as parallel arrays."""

    n_labels: int
    names: Sequence[str]
    item: list[int] = field(default_factory=list)
    label: list[int] = field(default_factory=list)
    rater: list[int] = field(default_factory=list)  # user id (human) or judge id (ai)
    human: list[bool] = field(default_factory=list)
    annotation: list[int] = field(default_factory=list)

    def add(self, v: Any, code: int) -> None:
        self.item.append(v.item_id)
        self.label.append(code)
        is_human = v.source is HUMAN
        self.human.append(is_human)
        self.rater.append(v.annotator_id if is_human else v.judge_id)
        self.annotation.append(v.annotation_id)

    def arrays(self, humans: bool | None = None, rater: int | None = None) -> tuple[Any, Any, Any]:
        it, lab, rt = np.asarray(self.item), np.asarray(self.label), np.asarray(self.rater)
        mask = np.ones(len(it), dtype=bool)
        if humans is not None:
            mask &= np.asarray(self.human, dtype=bool) == humans
        if rater is not None:
            mask &= rt == rater
        return it[mask].astype(np.int64), lab[mask].astype(np.int64), rt[mask].astype(np.int64)


def coded_pairwise(s: Snapshot) -> Coded:
    c = Coded(3, labels.PAIRWISE_LABELS)
    for v in s.votes:
        first, second = s.by_item[v.item_id][:2]
        code = (
            labels.TIE
            if v.preferred is None
            else (labels.FIRST if v.preferred == first else labels.SECOND)
        )
        if v.preferred is not None and v.preferred not in (first, second):
            continue
        c.add(v, code)
    return c


def coded_ratings(s: Snapshot) -> Coded:
    c = Coded(7, [str(r) for r in range(1, 8)])
    for v in s.votes:
        rating = getattr(v, "rating", None) if isinstance(v, CritiqueVote) else v.overall
        if rating is not None:
            c.add(v, int(rating) - 1)
    return c


def _one_per_item(items: Any, labels_: Any) -> tuple[Any, Any]:
    """A judge's last label per item (a judge may have voted twice on an item)."""
    if len(items) == 0:
        return items, labels_
    rev_items = items[::-1]
    _, first = np.unique(rev_items, return_index=True)
    return rev_items[first], labels_[::-1][first]


def categorical_agreement(c: Coded, ordinal: bool) -> list[dict[str, Any]]:
    from app.quality.alpha import krippendorff_alpha

    it, lab, _ = c.arrays(humans=True)
    # Ratings 1..7 are ordinal, and evenly spaced enough to read as an interval scale too.
    levels: list[Literal["ordinal", "nominal", "interval"]] = (
        ["ordinal", "interval"] if ordinal else ["nominal"]
    )
    rows = [
        {
            "key": f"alpha_{level}",
            "name": f"Krippendorff's alpha ({level})",
            "among": "humans",
            **krippendorff_alpha(
                it, lab, level=level, domain=list(range(c.n_labels)), n_boot=N_BOOT
            ).as_dict(),
        }
        for level in levels
    ]
    if not ordinal:
        rows.append(
            {
                "key": "fleiss_kappa",
                "name": "Fleiss' kappa",
                "among": "humans",
                **kappa.fleiss_kappa(it, lab, c.n_labels, n_boot=N_BOOT).as_dict(),
            }
        )
    return rows


def rater_pairs(c: Coded, ordinal: bool) -> dict[str, Any]:
    """Cohen's kappa of every pair of human raters with MIN_PAIR_ITEMS items in common (linear
    weights for ratings): its spread over the pairs, and the LOWEST_PAIRS least agreeing pairs
    with 95% intervals. A bootstrap over every pair costs a minute at 45,000 pairs, so only
    the listed pairs are resampled, each on the votes of its own two raters."""
    it, lab, rt = c.arrays(humans=True)
    weights: kappa.Weights = "linear" if ordinal else None
    name = "Cohen's kappa (linear weights)" if ordinal else "Cohen's kappa"
    if len(it):
        # One vote per (item, rater), the last: a re-submission is not a second rater.
        keys = it * (int(rt.max()) + 1) + rt
        _, last = np.unique(keys[::-1], return_index=True)
        keep = np.sort(len(keys) - 1 - last)
        it, lab, rt = it[keep], lab[keep], rt[keep]
    every = kappa.rater_pair_kappas(
        it, rt, lab, c.n_labels, min_items=MIN_PAIR_ITEMS, weights=weights, n_boot=0
    )
    defined = np.isfinite(every.kappa)
    out: dict[str, Any] = {
        "statistic": name,
        "min_items": MIN_PAIR_ITEMS,
        "pairs": len(every.n),
        "defined": int(np.count_nonzero(defined)),
        "median": None,
        "p10": None,
        "p90": None,
        "lowest": [],
    }
    if not defined.any():
        return out
    k = every.kappa[defined]
    out.update(
        median=finite(float(np.median(k))),
        p10=finite(float(np.percentile(k, 10))),
        p90=finite(float(np.percentile(k, 90))),
    )
    order = np.argsort(every.kappa[defined], kind="stable")[:LOWEST_PAIRS]
    pairs_a, pairs_b = every.rater_a[defined][order], every.rater_b[defined][order]
    for a, b in zip(pairs_a.tolist(), pairs_b.tolist(), strict=True):
        mine = (rt == a) | (rt == b)
        one = kappa.rater_pair_kappas(
            it[mine], rt[mine], lab[mine], c.n_labels, min_items=MIN_PAIR_ITEMS, weights=weights
        )
        out["lowest"].extend(one.as_rows())
    return out


def categorical_judges(c: Coded, s: Snapshot, ordinal: bool) -> list[dict[str, Any]]:
    h_items, h_labels, _ = c.arrays(humans=True)
    out = []
    judge_ids = sorted({r for r, h in zip(c.rater, c.human, strict=True) if not h})
    for j in judge_ids:
        ji, jl, _ = c.arrays(humans=False, rater=j)
        ji, jl = _one_per_item(ji, jl)
        vs = kappa.versus_majority(
            ji,
            jl,
            h_items,
            h_labels,
            c.n_labels,
            weights="linear" if ordinal else None,
            n_boot=N_BOOT,
        )
        out.append(
            {
                "judge_id": j,
                "name": s.judge_names.get(j),
                "votes": int(
                    np.count_nonzero(np.asarray(c.rater)[~np.asarray(c.human, dtype=bool)] == j)
                ),
                "statistic": "agreement with the human majority",
                "agreement": est(vs.agreement),
                "kappa": est(vs.kappa),
                "items": vs.items,
                "no_majority": vs.no_majority,
            }
        )
    return out


def ranking_agreement(s: Snapshot) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from app.quality import rankings

    human = [v for v in s.votes if v.source is HUMAN]
    est_h = rankings.ranking_agreement(
        [v.item_id for v in human], [v.order for v in human], n_boot=N_BOOT
    )
    rows = [
        {
            "key": "kendall_tau",
            "name": "Kendall's tau between rankers",
            "among": "humans",
            **est_h.as_dict(),
        }
    ]
    judges = []
    for j in sorted({v.judge_id for v in s.votes if v.source is AI}):
        last: dict[int, RankingVote] = {v.item_id: v for v in s.votes if v.judge_id == j}
        e = rankings.ranking_versus(
            list(last),
            [v.order for v in last.values()],
            [v.item_id for v in human],
            [v.order for v in human],
            n_boot=N_BOOT,
        )
        judges.append(
            {
                "judge_id": j,
                "name": s.judge_names.get(j),
                "votes": sum(1 for v in s.votes if v.judge_id == j),
                "statistic": "Kendall's tau with each human",
                "agreement": est(e),
                "kappa": None,
                "items": e.n,
                "no_majority": 0,
            }
        )
    return rows, judges


def span_agreement(s: Snapshot) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from app.quality import spans

    human = [v for v in s.votes if v.source is HUMAN]
    table = spans.SpanTable.from_annotations((v.item_id, v.annotator_id, v.spans) for v in human)
    rows = [
        {
            "key": f"span_f1_{mode}",
            "name": f"Span F1 ({mode})",
            "among": "humans",
            **spans.span_agreement(table, mode, n_boot=N_BOOT).as_dict(),
        }
        for mode in ("exact", "overlap")
    ]
    judges = []
    # A judge against each item's first human annotation: the reference must be one per item.
    first_human: dict[int, SpanVote] = {}
    for v in human:
        first_human.setdefault(v.item_id, v)
    for j in sorted({v.judge_id for v in s.votes if v.source is AI}):
        last: dict[int, SpanVote] = {v.item_id: v for v in s.votes if v.judge_id == j}
        pred = spans.SpanTable.from_annotations((i, j, v.spans) for i, v in last.items())
        ref = spans.SpanTable.from_annotations(
            (i, v.annotator_id or 0, v.spans) for i, v in first_human.items()
        )
        versus = spans.span_f1_versus(pred, ref, "overlap", n_boot=N_BOOT)
        judges.append(
            {
                "judge_id": j,
                "name": s.judge_names.get(j),
                "votes": len(last),
                "statistic": "span F1 (overlap) against the first human annotation",
                "agreement": est(versus.f1),
                "kappa": None,
                "items": versus.f1.n,
                "no_majority": 0,
            }
        )
    return rows, judges


# --- trust, gold, throughput, bias, leaderboard ----------------------------------------------


def trust(c: Coded, s: Snapshot) -> tuple[dict[str, Any] | None, dict[int, float]]:
    """Dawid-Skene over the human votes; its accuracy per annotator, and how it compares with
    plain majority on gold items."""
    from app.quality.trust import dawid_skene

    it, lab, rt = c.arrays(humans=True)
    if len(it) == 0:
        return None, {}
    gold_items, gold_labels = _gold_codes(c, s)
    t = dawid_skene(
        it, rt, lab, c.n_labels, gold_items=gold_items, gold_labels=gold_labels, n_iter=50
    )
    acc = {int(r): float(a) for r, a in zip(t.raters, t.accuracy, strict=True)}
    maj = labels.majority(it, lab, c.n_labels)
    changed = int(np.count_nonzero(maj.label != t.label))
    return {
        "method": "dawid_skene",
        "iterations": t.iterations,
        "items": len(t.items),
        "labels_differing_from_majority": changed,
        "gold_items_used": len(gold_items),
    }, acc


def _gold_codes(c: Coded, s: Snapshot) -> tuple[list[int], list[int]]:
    """Gold items' known labels as codes, to pin them in Dawid-Skene."""
    items, codes = [], []
    for item, answer in s.gold_answers.items():
        if not answer:
            continue
        # Stored resolved to import positions: pairwise {"preferred": 0|1|None} (None: a tie).
        if c.n_labels == 3 and "preferred" in answer:
            pos = answer["preferred"]
            codes.append(labels.TIE if pos is None else (labels.FIRST, labels.SECOND)[pos])
        elif c.n_labels == 7 and isinstance(answer.get("rating"), int):
            codes.append(int(answer["rating"]) - 1)
        else:
            continue
        items.append(item)
    return items, codes


def gold_verdicts(s: Snapshot, settings: gold.GoldPolicy) -> dict[int, dict[str, Any]]:
    """Gold accuracy per annotator over all their gold answers, and the policy's verdict on
    the answers given since their last pause was lifted (a lifted pause starts afresh)."""
    raters, scores, recent_raters, recent_scores = [], [], [], []
    for v in s.votes:
        score = s.meta.gold_score.get(v.annotation_id)
        if v.source is not HUMAN or score is None:
            continue
        raters.append(v.annotator_id)
        scores.append(score)
        lifted = s.lifts.get(v.annotator_id)
        if lifted is None or v.created_at > lifted.astimezone(UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        ):
            recent_raters.append(v.annotator_id)
            recent_scores.append(score)
    out: dict[int, dict[str, Any]] = {}
    overall = gold.gold_accuracy(raters, scores)
    for i, r in enumerate(overall.raters.tolist()):
        out[r] = {
            "answered": int(overall.answered[i]),
            "accuracy": finite(overall.accuracy[i]),
            "low": finite(overall.low[i]),
            "high": finite(overall.high[i]),
            "status": "too_few",
            "reason": "",
        }
    recent = gold.gold_check(gold.gold_accuracy(recent_raters, recent_scores), settings)
    for verdict in recent:
        out[verdict.rater]["status"] = verdict.status
        out[verdict.rater]["reason"] = verdict.reason
    for r, row in out.items():
        if not row["reason"]:
            row["reason"] = (
                f"No gold answers since the last pause was lifted ({row['answered']} before)."
            )
            del r
    return out


def throughput(s: Snapshot) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    days: Counter[tuple[str, str]] = Counter()
    per: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"annotations": 0, "days": set(), "times": []}
    )
    times = []
    for v in s.votes:
        day = v.created_at[:10]
        days[(day, v.source.value)] += 1
        if v.source is HUMAN:
            row = per[v.annotator_id]
            row["annotations"] += 1
            row["days"].add(day)
            ms = s.meta.time_ms.get(v.annotation_id)
            if ms is not None:
                row["times"].append(ms)
                times.append(ms)
    all_days = sorted({d for d, _ in days})[-MAX_DAYS:]
    before = sum(n for (d, _), n in days.items() if all_days and d < all_days[0])
    cumulative, total = [], before
    for d in all_days:
        total += days[(d, "human")] + days[(d, "ai")]
        cumulative.append(total)
    progress = {
        "days": all_days,
        "human": [days[(d, "human")] for d in all_days],
        "ai": [days[(d, "ai")] for d in all_days],
        "cumulative": cumulative,
    }
    annotators = {}
    for uid, row in per.items():
        pct = p50_p95(row["times"])
        annotators[uid] = {
            "annotations": row["annotations"],
            "active_days": len(row["days"]),
            "per_active_day": row["annotations"] / len(row["days"]),
            "time_p50_ms": pct.p50,
            "time_p95_ms": pct.p95,
        }
    pct = p50_p95(times)
    return {
        "progress": progress,
        "time_per_task": {"p50_ms": pct.p50, "p95_ms": pct.p95, "n": pct.n},
    }, annotators


def _bias_rows(s: Snapshot, votes: Iterable[Any]) -> dict[str, Any]:
    """First-position rate and longer-wins rate of decisive pairwise (or top-of-ranking) votes."""
    first, win_len, lose_len = [], [], []
    for v in votes:
        if isinstance(v, PairwiseVote):
            if v.preferred is None:
                continue
            first.append(v.preferred == v.shown_first)
            loser = next((r for r in s.by_item[v.item_id] if r != v.preferred), None)
            if loser is not None:
                win_len.append(s.responses[v.preferred].length)
                lose_len.append(s.responses[loser].length)
        elif isinstance(v, RankingVote) and v.order and v.shown_order:
            first.append(v.order[0] == v.shown_order[0])
            win_len.append(s.responses[v.order[0]].length)
            lose_len.append(s.responses[v.order[-1]].length)
    return {
        "first_position": est(bias.first_position_rate(first, n_boot=N_BOOT) if first else EMPTY),
        "longer_wins": est(
            bias.length_bias(win_len, lose_len, n_boot=N_BOOT) if win_len else EMPTY
        ),
    }


def bias_stats(s: Snapshot) -> dict[str, Any]:
    humans = _bias_rows(s, (v for v in s.votes if v.source is HUMAN))
    judges = []
    for j in sorted({v.judge_id for v in s.votes if v.source is AI}):
        judges.append(
            {
                "judge_id": j,
                "name": s.judge_names.get(j),
                **_bias_rows(s, (v for v in s.votes if v.judge_id == j)),
            }
        )
    return {"humans": humans, "judges": judges}


def battles(
    s: Snapshot, source: AnnotationSource | None
) -> tuple[list[str], list[str], list[float], list[int], list[int]]:
    a_models, b_models, outcome, a_len, b_len = [], [], [], [], []

    def add(winner: int, loser: int, result: float) -> None:
        ra, rb = s.responses[winner], s.responses[loser]
        if ra.model is None or rb.model is None:
            return
        a_models.append(ra.model)
        b_models.append(rb.model)
        outcome.append(result)
        a_len.append(ra.length)
        b_len.append(rb.length)

    for v in s.votes:
        if source is not None and v.source is not source:
            continue
        if isinstance(v, PairwiseVote):
            first, second = s.by_item[v.item_id][:2]
            if v.preferred is None:
                add(first, second, 0.5)
            else:
                add(v.preferred, second if v.preferred == first else first, 1.0)
        elif isinstance(v, RankingVote):
            for i, better in enumerate(v.order):
                for worse in v.order[i + 1 :]:
                    add(better, worse, 1.0)
    return a_models, b_models, outcome, a_len, b_len


def leaderboards(
    s: Snapshot, progress: Callable[[float, str], None] = lambda f, step: None
) -> tuple[dict[str, Any] | None, str | None]:
    """Plain and length-controlled boards for each vote source (all, human, ai). The six fits
    are the longest step of a big refresh: `progress` is called after each, which renews the
    job's claim between them."""
    from app.quality.leaderboard import bradley_terry

    if s.project["kind"] not in ("pairwise", "ranking"):
        return None, "A leaderboard needs pairwise or ranking votes between responses."
    if not any(r.model for r in s.responses.values()):
        return None, "No response carries a `model`: import responses with `model` to rank models."
    out: dict[str, Any] = {}
    sources = (("all", None), ("human", HUMAN), ("ai", AI))
    for n, (name, source) in enumerate(sources):
        a, b, y, la, lb = battles(s, source)
        if not a:
            out[name] = None
            continue
        plain = bradley_terry(a, b, y, n_boot=BOARD_N_BOOT).as_dict()
        progress(0.6 + 0.25 * (2 * n + 1) / (2 * len(sources)), f"leaderboard {name}")
        # Length control costs several plain fits (a row per distinct length step), once per
        # source: humans and judges can favour long answers differently.
        controlled = bradley_terry(a, b, y, length_a=la, length_b=lb, n_boot=BOARD_N_BOOT)
        out[name] = {"plain": plain, "length_controlled": controlled.as_dict()}
        progress(0.6 + 0.25 * (2 * n + 2) / (2 * len(sources)), f"leaderboard {name} (length)")
    if all(v is None for v in out.values()):
        return None, "No vote compares responses of two different models yet."
    return out, None


def label_balance(s: Snapshot, c: Coded | None) -> list[dict[str, Any]]:
    if s.project["kind"] == "ranking":
        counts: Counter[str] = Counter()
        for v in s.votes:
            if v.source is HUMAN and v.order:
                counts[f"response {s.responses[v.order[0]].position + 1} first"] += 1
        return [{"label": k, "count": n} for k, n in sorted(counts.items())]
    if s.project["kind"] == "span":
        counts = Counter(sp["label"] for v in s.votes if v.source is HUMAN for sp in v.spans)
        return [{"label": k, "count": n} for k, n in sorted(counts.items())]
    assert c is not None
    _, lab, _ = c.arrays(humans=True)
    bins = np.bincount(lab, minlength=c.n_labels) if len(lab) else np.zeros(c.n_labels, dtype=int)
    return [
        {"label": name, "count": int(n)} for name, n in zip(c.names, bins.tolist(), strict=True)
    ]


def _tau(a: Sequence[int], b: Sequence[int]) -> float:
    """Kendall's tau between two full rankings of the same responses (no ties)."""
    pos = {rid: n for n, rid in enumerate(b)}
    ranks = [pos[rid] for rid in a]
    pairs = concordant = 0
    for i, x in enumerate(ranks):
        for y in ranks[i + 1 :]:
            pairs += 1
            concordant += x < y
    return (2 * concordant - pairs) / pairs if pairs else 1.0


def peer_agreement(s: Snapshot) -> dict[int, float]:
    """Span and ranking projects, which have no majority label: per annotator, the mean
    agreement with every other human on the same items (span: F1 of their (code point,
    label) marks, as span exports' `agreement`; ranking: Kendall's tau of their orders)."""
    from itertools import combinations

    from app.quality import aggregate as agg

    by_item: dict[int, list[Any]] = defaultdict(list)
    for v in s.votes:
        if v.source is HUMAN and v.annotator_id is not None:
            by_item[v.item_id].append(v)
    sums: dict[int, float] = defaultdict(float)
    counts: dict[int, int] = defaultdict(int)
    span = s.project["kind"] == "span"
    for votes in by_item.values():
        for a, b in combinations(votes, 2):
            if a.annotator_id == b.annotator_id:
                continue
            score = agg.span_agreement([a.spans, b.spans]) if span else _tau(a.order, b.order)
            for uid in (a.annotator_id, b.annotator_id):
                sums[uid] += score
                counts[uid] += 1
    return {uid: sums[uid] / counts[uid] for uid in sums}


def majority_agreement(c: Coded) -> dict[int, float]:
    """Per annotator: the share of their votes that match their item's plurality label."""
    it, lab, rt = c.arrays(humans=True)
    if len(it) == 0:
        return {}
    maj = labels.majority(it, lab, c.n_labels)
    pos = np.searchsorted(maj.items, it)
    hit = (maj.label[pos] == lab) & (maj.votes[pos] >= 2)
    counted = maj.votes[pos] >= 2
    out = {}
    for r in np.unique(rt).tolist():
        mine = rt == r
        n = int(np.count_nonzero(counted & mine))
        if n:
            out[r] = float(np.count_nonzero(hit & mine)) / n
    return out


# --- the whole snapshot -----------------------------------------------------------------------


def _no_progress(fraction: float, step: str) -> None:
    return None


def compute(
    conn: Connection,
    project_id: int,
    policy: gold.GoldPolicy,
    progress: Callable[[float, str], None] = _no_progress,
) -> dict[str, Any]:
    """Every statistic of the project, as the JSON the API serves. `progress(fraction, step)`
    is called between the steps (the job reports it, which also renews its claim)."""
    started = time.monotonic()
    s = read_snapshot(conn, project_id)
    progress(0.2, "read")
    kind = s.project["kind"]
    n_votes = len(s.votes)
    result: dict[str, Any] = {
        "project": {"id": s.project["id"], "name": s.project["name"], "kind": kind},
        "last_annotation_id": s.last_annotation_id,
        "counts": {
            **s.counts,
            "annotators": len({v.annotator_id for v in s.votes if v.source is HUMAN}),
            "judges": len({v.judge_id for v in s.votes if v.source is AI}),
        },
        "empty": n_votes == 0,
        "explanation": None,
    }
    if n_votes == 0:
        result["explanation"] = (
            "No annotations yet: statistics appear once annotators or judges have labelled items."
            if s.counts["items"]
            else "The project has no items yet: upload items, then annotate them."
        )
    c: Coded | None = None
    if kind == "pairwise":
        c = coded_pairwise(s)
        agreement, judges = categorical_agreement(c, False), categorical_judges(c, s, False)
    elif kind == "critique":
        c = coded_ratings(s)
        agreement, judges = categorical_agreement(c, True), categorical_judges(c, s, True)
    elif kind == "ranking":
        agreement, judges = ranking_agreement(s)
    else:
        agreement, judges = span_agreement(s)
    if kind in ("span", "critique"):
        # Divided items for the review queue; store_snapshot writes them beside the snapshot.
        humans = [v for v in s.votes if v.source is HUMAN]
        found = (review.span_candidates if kind == "span" else review.critique_candidates)(humans)
        result["review_candidates"] = [c.as_dict() for c in found]
    pairs = rater_pairs(c, kind == "critique") if c is not None else None
    progress(0.35, "agreement")
    trust_summary, trust_acc = trust(c, s) if c is not None and n_votes else (None, {})
    progress(0.55, "trust")
    flow, per_annotator = throughput(s)
    verdicts = gold_verdicts(s, policy)
    agree_maj = majority_agreement(c) if c is not None else {}
    agree_peers = peer_agreement(s) if kind in ("span", "ranking") else {}
    annotators = []
    for uid, row in sorted(per_annotator.items(), key=lambda kv: (-kv[1]["annotations"], kv[0])):
        annotators.append(
            {
                "user_id": uid,
                **row,
                "majority_agreement": agree_maj.get(uid),
                "peer_agreement": agree_peers.get(uid),
                "trust_accuracy": finite(trust_acc.get(uid)),
                "gold": verdicts.get(uid),
            }
        )
    progress(0.6, "annotators")
    board, board_why = leaderboards(s, progress) if n_votes else (None, "No votes yet.")
    progress(0.85, "leaderboard")
    result.update(
        agreement=agreement,
        rater_pairs=pairs,
        judges=judges,
        annotators=annotators[:MAX_ANNOTATORS],
        annotators_total=len(annotators),
        trust=trust_summary,
        **flow,
        label_balance=label_balance(s, c) if n_votes else [],
        bias=bias_stats(s) if kind in ("pairwise", "ranking") else None,
        leaderboard=board,
        leaderboard_explanation=board_why,
        gold_policy={
            "warn_below": policy.warn_below,
            "pause_below": policy.pause_below,
            "min_answers": policy.min_answers,
        },
        computed_in_ms=int((time.monotonic() - started) * 1000),
        computed_at=datetime.now(UTC).isoformat(),
    )
    return result
