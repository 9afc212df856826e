"""Turn one item and its votes into the rows of an export schema (keys in column order)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.annotations.votes import (
    CritiqueVote,
    FullVote,
    ItemVotes,
    PairwiseVote,
    RankingVote,
    Response,
    SpanVote,
    VoteHead,
)
from app.exports.schemas import Aggregate, ExportOptions, Schema, Style
from app.projects.rules import TaskKind, TaskRules
from app.quality import aggregate as agg
from app.quality import review

Row = dict[str, Any]


@dataclass
class Context:
    """What row builders need besides the item; `excluded` counts what they leave out, and why."""

    options: ExportOptions
    project: TaskRules
    excluded: dict[str, int] = field(default_factory=dict)
    # Pairwise votes whose winner was the response shown first / shown second (position bias).
    shown_first: list[int] = field(default_factory=lambda: [0, 0])
    # Judge id -> name, for the `judge` column of AI votes (read with the snapshot).
    judges: dict[int, str] = field(default_factory=dict)
    # Item id -> a reviewer's final label ({payload, decided_by, decided_at, note}): it wins
    # over the votes' aggregation (consensus or dawid_skene).
    adjudications: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Item id -> the Dawid-Skene preferred response id (None: a tie), for aggregate=dawid_skene.
    trust_labels: dict[int, int | None] = field(default_factory=dict)

    def skip(self, reason: str, n: int = 1) -> None:
        self.excluded[reason] = self.excluded.get(reason, 0) + n


def judge_name(ctx: Context, judge_id: int | None) -> str | None:
    """How an AI vote's judge is named in exports: `judge:<name>` (names are unique)."""
    if judge_id is None:
        return None
    return f"judge:{ctx.judges.get(judge_id, judge_id)}"


def _voter(ctx: Context, v: VoteHead) -> Row:
    # The source is a StrEnum: a str, which both writers write as its value.
    return {
        "annotation_id": v.annotation_id,
        "source": v.source,
        "annotator_id": v.annotator_id,
        "judge": judge_name(ctx, v.judge_id),
        "judge_template_version": v.template_version,
    }


def _text(ctx: Context, role: str, content: str) -> Any:
    if ctx.options.style is Style.conversational:
        return [{"role": role, "content": content}]
    return content


def _item(item: ItemVotes[Any]) -> Row:
    return {
        "item_id": item.id,
        "external_id": item.external_id,
        "is_gold": item.is_gold,
        "metadata": item.metadata,
    }


def _passes(ctx: Context, agreement: float) -> bool:
    if agreement < ctx.options.min_agreement:
        ctx.skip("below_min_agreement")
        return False
    return True


# --- preference -------------------------------------------------------------------------------


def _pair_row(
    ctx: Context,
    item: ItemVotes[Any],
    chosen: Response,
    rejected: Response,
    ranks: tuple[int | None, int | None],
    aggregation: str,
    counts: tuple[int, int, int],
    votes: list[Row],
    adjudication: str | None = None,
) -> Row:
    n = sum(counts)
    return {
        "prompt": _text(ctx, "user", item.prompt),
        "chosen": _text(ctx, "assistant", chosen.text),
        "rejected": _text(ctx, "assistant", rejected.text),
        **_item(item),
        "kind": ctx.project.kind.value,
        "chosen_id": chosen.id,
        "rejected_id": rejected.id,
        "chosen_model": chosen.model,
        "rejected_model": rejected.model,
        "chosen_rank": ranks[0],
        "rejected_rank": ranks[1],
        "aggregation": aggregation,
        "n_votes": n,
        "votes_chosen": counts[0],
        "votes_rejected": counts[1],
        "votes_tie": counts[2],
        "agreement": counts[0] / n,
        "votes": votes,
        "adjudication": adjudication,
    }


def _pairwise_vote(ctx: Context, v: PairwiseVote, chosen: int) -> Row:
    preferred = v.preferred
    choice = "tie" if preferred is None else "chosen" if preferred == chosen else "rejected"
    # Spelled out rather than merged from _voter(): this runs once per vote of every item.
    return {
        "annotation_id": v.annotation_id,
        "source": v.source,
        "annotator_id": v.annotator_id,
        "judge": None if v.judge_id is None else f"judge:{ctx.judges.get(v.judge_id, v.judge_id)}",
        "judge_template_version": v.template_version,
        "choice": choice,
        "strength": v.strength,
        "created_at": v.created_at,
    }


def _count_position(ctx: Context, votes: list[PairwiseVote]) -> None:
    for v in votes:
        if v.preferred is not None:
            ctx.shown_first[0 if v.preferred == v.shown_first else 1] += 1


def pairwise_preference(ctx: Context, item: ItemVotes[PairwiseVote]) -> list[Row]:
    by_id = {r.id: r for r in item.responses}
    first, second = item.responses[0].id, item.responses[1].id
    if ctx.options.aggregate is Aggregate.none:
        rows = []
        for v in item.votes:
            if v.preferred is None:
                ctx.skip("tie")
                continue
            winner = v.preferred
            loser = second if winner == first else first
            rows.append(
                _pair_row(
                    ctx,
                    item,
                    by_id[winner],
                    by_id[loser],
                    (None, None),
                    "none",
                    (1, 0, 0),
                    [_pairwise_vote(ctx, v, winner)],
                )
            )
            _count_position(ctx, [v])
        return rows
    decided = ctx.adjudications.get(item.id)
    if decided is not None or ctx.options.aggregate is Aggregate.dawid_skene:
        if decided is not None:
            label, how = decided["payload"].get("preferred"), "adjudicated"
        else:
            label, how = ctx.trust_labels.get(item.id), "dawid_skene"
        if label is None:
            ctx.skip("tie")
            return []
        winner = label
        loser = second if winner == first else first
        _count_position(ctx, item.votes)
        prefs = [v.preferred for v in item.votes]
        counts = (prefs.count(winner), prefs.count(loser), prefs.count(None))
        # An adjudicated label stands whatever the votes' agreement; a computed one is filtered.
        if decided is None and not _passes(ctx, counts[0] / len(prefs)):
            return []
        votes = [_pairwise_vote(ctx, v, winner) for v in item.votes]
        return [
            _pair_row(
                ctx,
                item,
                by_id[winner],
                by_id[loser],
                (None, None),
                how,
                counts,
                votes,
                _provenance(decided),
            )
        ]
    m = agg.majority([v.preferred for v in item.votes], first, second)
    if m.winner is None or m.loser is None:
        ctx.skip("tie")
        return []
    if not _passes(ctx, m.agreement):
        return []
    _count_position(ctx, item.votes)
    votes = [_pairwise_vote(ctx, v, m.winner) for v in item.votes]
    counts = (m.for_winner, m.for_loser, m.ties)
    return [
        _pair_row(
            ctx, item, by_id[m.winner], by_id[m.loser], (None, None), "majority", counts, votes
        )
    ]


def _provenance(decided: dict[str, Any] | None) -> str | None:
    if decided is None:
        return None
    keep = {k: decided[k] for k in ("decided_by", "decided_at", "note")}
    # Span and critique labels say which annotation they started from, and if it was edited.
    for k in ("from_annotation", "edited"):
        if k in decided["payload"]:
            keep[k] = decided["payload"][k]
    return orjson.dumps(keep).decode()


def _ranking_orders(item: ItemVotes[RankingVote]) -> list[list[int]]:
    return [v.order for v in item.votes]


def ranking_preference(ctx: Context, item: ItemVotes[RankingVote]) -> list[Row]:
    by_id = {r.id: r for r in item.responses}
    ids = [r.id for r in item.responses]
    mode = ctx.options.pairs.value
    rows: list[Row] = []
    if ctx.options.aggregate is Aggregate.none:
        for v in item.votes:
            order = v.order
            for i, j in agg.ranking_pairs(order, mode):
                vote = {
                    **_voter(ctx, v),
                    "choice": "chosen",
                    "strength": None,
                    "created_at": v.created_at,
                }
                rows.append(
                    _pair_row(
                        ctx,
                        item,
                        by_id[order[i]],
                        by_id[order[j]],
                        (i + 1, j + 1),
                        "none",
                        (1, 0, 0),
                        [vote],
                    )
                )
        return rows
    orders = _ranking_orders(item)
    points = agg.borda(orders, ids)
    order = agg.consensus_order(points, ids)
    decided = ctx.adjudications.get(item.id)
    if decided is not None:
        order = list(decided["payload"]["order"])
    voter_ranks = [agg.ranks(o) for o in orders]
    for i, j in agg.ranking_pairs(order, mode):
        x, y = order[i], order[j]
        if decided is None and points[x] == points[y]:
            ctx.skip("tie")
            continue
        above = [r[x] < r[y] for r in voter_ranks]
        support = sum(above)
        if decided is None and not _passes(ctx, support / len(above)):
            continue
        votes = [
            {
                **_voter(ctx, v),
                "choice": "chosen" if up else "rejected",
                "strength": None,
                "created_at": v.created_at,
            }
            for v, up in zip(item.votes, above, strict=True)
        ]
        counts = (support, len(above) - support, 0)
        how = "borda" if decided is None else "adjudicated"
        rows.append(
            _pair_row(
                ctx,
                item,
                by_id[x],
                by_id[y],
                (i + 1, j + 1),
                how,
                counts,
                votes,
                _provenance(decided),
            )
        )
    return rows


# --- ranking ----------------------------------------------------------------------------------


def ranking(ctx: Context, item: ItemVotes[RankingVote]) -> list[Row]:
    ids = [r.id for r in item.responses]
    index = {rid: n for n, rid in enumerate(ids)}

    def row(
        order: list[int],
        points: dict[int, int],
        aggregation: str,
        votes: list[RankingVote],
        decided: dict[str, Any] | None = None,
    ) -> Row:
        voter_ranks = [agg.ranks(v.order) for v in votes]
        return {
            "prompt": item.prompt,
            "responses": [r.text for r in item.responses],
            "response_ids": ids,
            "models": [r.model for r in item.responses],
            "order": [index[rid] for rid in order],
            "scores": [points[rid] for rid in ids],
            **_item(item),
            "aggregation": aggregation,
            "n_votes": len(votes),
            "agreement": agg.pair_agreement(order, voter_ranks),
            "votes": [
                {
                    **_voter(ctx, v),
                    "order": [index[rid] for rid in v.order],
                    "created_at": v.created_at,
                }
                for v in votes
            ],
            "adjudication": _provenance(decided),
        }

    if ctx.options.aggregate is Aggregate.none:
        return [row(v.order, agg.borda([v.order], ids), "none", [v]) for v in item.votes]
    points = agg.borda(_ranking_orders(item), ids)
    decided = ctx.adjudications.get(item.id)
    if decided is not None:
        # A reviewer's order stands whatever the votes' agreement.
        return [row(list(decided["payload"]["order"]), points, "adjudicated", item.votes, decided)]
    out = row(agg.consensus_order(points, ids), points, "borda", item.votes)
    return [out] if _passes(ctx, out["agreement"]) else []


# --- spans ------------------------------------------------------------------------------------


def _annotator_spans(v: SpanVote) -> list[Row]:
    return [
        {"start": s["start"], "end": s["end"], "label": s["label"], "comment": s.get("comment")}
        for s in v.spans
    ]


def spans(ctx: Context, item: ItemVotes[SpanVote]) -> list[Row]:
    response = item.responses[0]

    def row(votes: list[SpanVote], aggregation: str, decided: dict[str, Any] | None = None) -> Row:
        per_vote = [v.spans for v in votes]
        overall = [v.overall for v in votes if v.overall is not None]
        if decided is not None:
            final = decided["payload"]
            merged = review.span_support(final["spans"], per_vote)
            if final.get("overall") is not None:
                overall = [final["overall"]]
        else:
            merged = agg.merge_spans(per_vote, ctx.options.span_threshold)
        return {
            "prompt": item.prompt,
            "response": response.text,
            "labels": list(ctx.project.span_labels),
            "spans": merged,
            **_item(item),
            "response_id": response.id,
            "model": response.model,
            "aggregation": aggregation,
            "n_votes": len(votes),
            "agreement": agg.span_agreement(per_vote),
            "overall": sum(overall) / len(overall) if overall else None,
            "votes": [
                {
                    **_voter(ctx, v),
                    "spans": _annotator_spans(v),
                    "overall": v.overall,
                    "created_at": v.created_at,
                }
                for v in votes
            ],
            "adjudication": _provenance(decided),
        }

    if ctx.options.aggregate is Aggregate.none:
        return [row([v], "none") for v in item.votes]
    decided = ctx.adjudications.get(item.id)
    if decided is not None:
        # The reviewer's spans stand whatever the votes' agreement.
        return [row(item.votes, "adjudicated", decided)]
    out = row(item.votes, "overlap")
    return [out] if _passes(ctx, out["agreement"]) else []


# --- critique ---------------------------------------------------------------------------------


def critique(ctx: Context, item: ItemVotes[CritiqueVote]) -> list[Row]:
    """One row per annotation; an adjudicated item (unless aggregate=none) is one row, the
    reviewer's final critique, credited to the annotation it started from if any."""
    response = item.responses[0]

    def row(label: Any, voter: Row, created_at: str, how: str, n: int, provenance: Any) -> Row:
        return {
            "prompt": item.prompt,
            "response": response.text,
            "critique": label["critique"],
            "rewrite": label["rewrite"],
            "rating": label["rating"],
            **_item(item),
            "response_id": response.id,
            "model": response.model,
            **voter,
            "created_at": created_at,
            "aggregation": how,
            "n_votes": n,
            "adjudication": provenance,
        }

    decided = ctx.adjudications.get(item.id)
    if decided is not None:
        final = decided["payload"]
        base = final.get("from_annotation")
        voter = next((_voter(ctx, v) for v in item.votes if v.annotation_id == base), None)
        if voter is None:  # written anew, or its annotation is filtered out of this export
            voter = {**_NO_VOTER, "annotation_id": base}
        return [
            row(
                final,
                voter,
                decided["decided_at"],
                "adjudicated",
                len(item.votes),
                _provenance(decided),
            )
        ]
    return [row(v._asdict(), _voter(ctx, v), v.created_at, "none", 1, None) for v in item.votes]


_NO_VOTER: Row = {
    "annotation_id": None,
    "source": None,
    "annotator_id": None,
    "judge": None,
    "judge_template_version": None,
}


# --- unpaired ---------------------------------------------------------------------------------


def _unpaired_row(
    ctx: Context,
    item: ItemVotes[Any],
    response: Response,
    label: bool,
    aggregation: str,
    agreement: float,
    rating: float | None,
    votes: list[Row],
) -> Row:
    return {
        "prompt": _text(ctx, "user", item.prompt),
        "completion": _text(ctx, "assistant", response.text),
        "label": label,
        **_item(item),
        "kind": ctx.project.kind.value,
        "response_id": response.id,
        "model": response.model,
        "aggregation": aggregation,
        "n_votes": len(votes),
        "agreement": agreement,
        "rating": rating,
        "votes": votes,
    }


def _support_vote(
    ctx: Context, v: VoteHead, supports: bool | None, rating: int | None = None
) -> Row:
    return {**_voter(ctx, v), "supports": supports, "rating": rating, "created_at": v.created_at}


def _pairwise_unpaired(ctx: Context, item: ItemVotes[PairwiseVote]) -> list[Row]:
    by_id = {r.id: r for r in item.responses}
    first, second = item.responses[0].id, item.responses[1].id
    rows: list[Row] = []
    if ctx.options.aggregate is Aggregate.none:
        for v in item.votes:
            if v.preferred is None:
                ctx.skip("tie")
                continue
            loser = second if v.preferred == first else first
            for rid, label in ((v.preferred, True), (loser, False)):
                vote = _support_vote(ctx, v, True)
                rows.append(_unpaired_row(ctx, item, by_id[rid], label, "none", 1.0, None, [vote]))
        return rows
    m = agg.majority([v.preferred for v in item.votes], first, second)
    if m.winner is None or m.loser is None:
        ctx.skip("tie")
        return []
    if not _passes(ctx, m.agreement):
        return []
    votes = [
        _support_vote(ctx, v, None if v.preferred is None else v.preferred == m.winner)
        for v in item.votes
    ]
    for rid, label in ((m.winner, True), (m.loser, False)):
        rows.append(
            _unpaired_row(ctx, item, by_id[rid], label, "majority", m.agreement, None, votes)
        )
    return rows


def _ranking_unpaired(ctx: Context, item: ItemVotes[RankingVote]) -> list[Row]:
    by_id = {r.id: r for r in item.responses}
    ids = [r.id for r in item.responses]
    rows: list[Row] = []
    if ctx.options.aggregate is Aggregate.none:
        for v in item.votes:
            for rid, label in ((v.order[0], True), (v.order[-1], False)):
                vote = _support_vote(ctx, v, True)
                rows.append(_unpaired_row(ctx, item, by_id[rid], label, "none", 1.0, None, [vote]))
        return rows
    orders = _ranking_orders(item)
    points = agg.borda(orders, ids)
    order = agg.consensus_order(points, ids)
    ends = ((order[0], order[1], True, 0), (order[-1], order[-2], False, -1))
    for rid, neighbour, label, end in ends:
        if points[rid] == points[neighbour]:
            ctx.skip("tie")
            continue
        support = [o[end] == rid for o in orders]
        agreement = sum(support) / len(support)
        if not _passes(ctx, agreement):
            continue
        votes = [_support_vote(ctx, v, s) for v, s in zip(item.votes, support, strict=True)]
        rows.append(_unpaired_row(ctx, item, by_id[rid], label, "borda", agreement, None, votes))
    return rows


def _rating(v: SpanVote | CritiqueVote) -> int | None:
    return v.rating if isinstance(v, CritiqueVote) else v.overall


def _rated_unpaired(ctx: Context, item: ItemVotes[SpanVote] | ItemVotes[CritiqueVote]) -> list[Row]:
    """Critique and span items: the rating (critique) or overall rating (span) vs a threshold."""
    response = item.responses[0]
    rated = [(v, r) for v in item.votes if (r := _rating(v)) is not None]
    if len(rated) < len(item.votes):
        ctx.skip("no_rating", len(item.votes) - len(rated))
    threshold = ctx.options.rating_threshold

    def supports(rating: int, above: bool) -> bool | None:
        return None if rating == threshold else (rating > threshold) == above

    rows: list[Row] = []
    groups = [[v] for v in rated] if ctx.options.aggregate is Aggregate.none else [rated]
    aggregation = "none" if ctx.options.aggregate is Aggregate.none else "mean"
    for group in groups:
        if not group:
            continue
        side = agg.rating_side([r for _, r in group], threshold)
        if side.above is None:
            ctx.skip("neutral_rating")
            continue
        if not _passes(ctx, side.agreement):
            continue
        votes = [_support_vote(ctx, v, supports(r, side.above), r) for v, r in group]
        rows.append(
            _unpaired_row(
                ctx, item, response, side.above, aggregation, side.agreement, side.mean, votes
            )
        )
    return rows


def unpaired(ctx: Context, item: ItemVotes[Any]) -> list[Row]:
    if ctx.project.kind is TaskKind.pairwise:
        return _pairwise_unpaired(ctx, item)
    if ctx.project.kind is TaskKind.ranking:
        return _ranking_unpaired(ctx, item)
    return _rated_unpaired(ctx, item)


# --- raw --------------------------------------------------------------------------------------


def raw(ctx: Context, item: ItemVotes[FullVote]) -> list[Row]:
    responses = [r._asdict() for r in item.responses]
    return [
        {
            "annotation_id": v.annotation_id,
            "project_id": ctx.project.project_id,
            "kind": ctx.project.kind.value,
            "item_id": item.id,
            "external_id": item.external_id,
            "prompt": item.prompt,
            "responses": responses,
            "metadata": item.metadata,
            "priority": item.priority,
            "is_gold": item.is_gold,
            "gold_answer": item.gold_answer,
            "source": v.source,
            "annotator_id": v.annotator_id,
            "judge_id": v.judge_id,
            "judge": judge_name(ctx, v.judge_id),
            "payload": orjson.dumps(v.payload, option=orjson.OPT_SORT_KEYS).decode(),
            "shown_order": v.shown_order,
            "schema_version": v.schema_version,
            "time_spent_ms": v.time_spent_ms,
            "over_quota": v.over_quota,
            "gold_score": v.gold_score,
            "assignment_id": v.assignment_id,
            "client_submission_id": v.client_submission_id,
            "created_at": v.created_at,
            "judge_model": v.judge_model,
            "judge_template_id": v.template_id,
            "judge_template_version": v.template_version,
            "judge_probability": v.probability,
            "judge_consistent": v.consistent,
            "judge_tokens_in": v.tokens_in,
            "judge_tokens_out": v.tokens_out,
            "judge_latency_s": v.latency_s,
            "judge_cost": v.cost,
            "judge_raw": None if v.judge_raw is None else orjson.dumps(v.judge_raw).decode(),
        }
        for v in item.votes
    ]


Builder = Callable[[Context, ItemVotes[Any]], list[Row]]


def builder(schema: Schema, kind: TaskKind) -> Builder:
    if schema is Schema.preference:
        return pairwise_preference if kind is TaskKind.pairwise else ranking_preference
    builders: dict[Schema, Builder] = {
        Schema.ranking: ranking,
        Schema.spans: spans,
        Schema.critique: critique,
        Schema.unpaired: unpaired,
        Schema.raw: raw,
    }
    return builders[schema]
