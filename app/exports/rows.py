"""Turn one item and its votes into the rows of an export schema (keys in column order)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.exports import aggregate as agg
from app.exports.query import ItemVotes, ProjectInfo
from app.exports.schemas import Aggregate, ExportOptions, Schema, Style

Row = dict[str, Any]
# Vote fields shared by every kind (see query.VOTE_HEAD); the kind's fields follow from TAIL.
ID, SOURCE, USER, JUDGE, AT, TAIL = 0, 1, 2, 3, 4, 5


@dataclass
class Context:
    """What row builders need besides the item; `excluded` counts what they leave out, and why."""

    options: ExportOptions
    project: ProjectInfo
    excluded: dict[str, int] = field(default_factory=dict)
    # Pairwise votes whose winner was the response shown first / shown second (position bias).
    shown_first: list[int] = field(default_factory=lambda: [0, 0])

    def skip(self, reason: str, n: int = 1) -> None:
        self.excluded[reason] = self.excluded.get(reason, 0) + n


def _voter(v: list[Any]) -> Row:
    return {"annotation_id": v[ID], "source": v[SOURCE], "annotator_id": v[USER], "judge": v[JUDGE]}


def _text(ctx: Context, role: str, content: str) -> Any:
    if ctx.options.style is Style.conversational:
        return [{"role": role, "content": content}]
    return content


def _item(item: ItemVotes) -> Row:
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
    item: ItemVotes,
    chosen: list[Any],
    rejected: list[Any],
    ranks: tuple[int | None, int | None],
    aggregation: str,
    counts: tuple[int, int, int],
    votes: list[Row],
) -> Row:
    n = sum(counts)
    return {
        "prompt": _text(ctx, "user", item.prompt),
        "chosen": _text(ctx, "assistant", chosen[2]),
        "rejected": _text(ctx, "assistant", rejected[2]),
        **_item(item),
        "kind": ctx.project.kind,
        "chosen_id": chosen[0],
        "rejected_id": rejected[0],
        "chosen_model": chosen[3],
        "rejected_model": rejected[3],
        "chosen_rank": ranks[0],
        "rejected_rank": ranks[1],
        "aggregation": aggregation,
        "n_votes": n,
        "votes_chosen": counts[0],
        "votes_rejected": counts[1],
        "votes_tie": counts[2],
        "agreement": counts[0] / n,
        "votes": votes,
    }


def _pairwise_vote(v: list[Any], chosen: int) -> Row:
    preferred = v[TAIL]
    choice = "tie" if preferred is None else "chosen" if preferred == chosen else "rejected"
    # Spelled out rather than merged from _voter(): this runs once per vote of every item.
    return {
        "annotation_id": v[ID],
        "source": v[SOURCE],
        "annotator_id": v[USER],
        "judge": v[JUDGE],
        "choice": choice,
        "strength": v[TAIL + 1],
        "created_at": v[AT],
    }


def _count_position(ctx: Context, votes: list[list[Any]]) -> None:
    for v in votes:
        if v[TAIL] is not None:
            ctx.shown_first[0 if v[TAIL] == v[TAIL + 2] else 1] += 1


def pairwise_preference(ctx: Context, item: ItemVotes) -> list[Row]:
    by_id = {r[0]: r for r in item.responses}
    first, second = item.responses[0][0], item.responses[1][0]
    if ctx.options.aggregate is Aggregate.none:
        rows = []
        for v in item.votes:
            if v[TAIL] is None:
                ctx.skip("tie")
                continue
            winner = v[TAIL]
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
                    [_pairwise_vote(v, winner)],
                )
            )
            _count_position(ctx, [v])
        return rows
    m = agg.majority([v[TAIL] for v in item.votes], first, second)
    if m.winner is None or m.loser is None:
        ctx.skip("tie")
        return []
    if not _passes(ctx, m.agreement):
        return []
    _count_position(ctx, item.votes)
    votes = [_pairwise_vote(v, m.winner) for v in item.votes]
    counts = (m.for_winner, m.for_loser, m.ties)
    return [
        _pair_row(
            ctx, item, by_id[m.winner], by_id[m.loser], (None, None), "majority", counts, votes
        )
    ]


def _ranking_orders(item: ItemVotes) -> list[list[int]]:
    return [v[TAIL] for v in item.votes]


def ranking_preference(ctx: Context, item: ItemVotes) -> list[Row]:
    by_id = {r[0]: r for r in item.responses}
    ids = [r[0] for r in item.responses]
    mode = ctx.options.pairs.value
    rows: list[Row] = []
    if ctx.options.aggregate is Aggregate.none:
        for v in item.votes:
            order = v[TAIL]
            for i, j in agg.ranking_pairs(order, mode):
                vote = {**_voter(v), "choice": "chosen", "strength": None, "created_at": v[AT]}
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
    voter_ranks = [agg.ranks(o) for o in orders]
    for i, j in agg.ranking_pairs(order, mode):
        x, y = order[i], order[j]
        if points[x] == points[y]:
            ctx.skip("tie")
            continue
        above = [r[x] < r[y] for r in voter_ranks]
        support = sum(above)
        if not _passes(ctx, support / len(above)):
            continue
        votes = [
            {
                **_voter(v),
                "choice": "chosen" if up else "rejected",
                "strength": None,
                "created_at": v[AT],
            }
            for v, up in zip(item.votes, above, strict=True)
        ]
        counts = (support, len(above) - support, 0)
        rows.append(
            _pair_row(ctx, item, by_id[x], by_id[y], (i + 1, j + 1), "borda", counts, votes)
        )
    return rows


# --- ranking ----------------------------------------------------------------------------------


def ranking(ctx: Context, item: ItemVotes) -> list[Row]:
    ids = [r[0] for r in item.responses]
    index = {rid: n for n, rid in enumerate(ids)}

    def row(order: list[int], points: dict[int, int], aggregation: str, votes: list[Any]) -> Row:
        voter_ranks = [agg.ranks(v[TAIL]) for v in votes]
        return {
            "prompt": item.prompt,
            "responses": [r[2] for r in item.responses],
            "response_ids": ids,
            "models": [r[3] for r in item.responses],
            "order": [index[rid] for rid in order],
            "scores": [points[rid] for rid in ids],
            **_item(item),
            "aggregation": aggregation,
            "n_votes": len(votes),
            "agreement": agg.pair_agreement(order, voter_ranks),
            "votes": [
                {**_voter(v), "order": [index[rid] for rid in v[TAIL]], "created_at": v[AT]}
                for v in votes
            ],
        }

    if ctx.options.aggregate is Aggregate.none:
        return [row(v[TAIL], agg.borda([v[TAIL]], ids), "none", [v]) for v in item.votes]
    points = agg.borda(_ranking_orders(item), ids)
    out = row(agg.consensus_order(points, ids), points, "borda", item.votes)
    return [out] if _passes(ctx, out["agreement"]) else []


# --- spans ------------------------------------------------------------------------------------


def _annotator_spans(v: list[Any]) -> list[Row]:
    return [
        {"start": s["start"], "end": s["end"], "label": s["label"], "comment": s.get("comment")}
        for s in v[TAIL]
    ]


def spans(ctx: Context, item: ItemVotes) -> list[Row]:
    response = item.responses[0]

    def row(votes: list[list[Any]], aggregation: str) -> Row:
        per_vote = [v[TAIL] for v in votes]
        overall = [v[TAIL + 1] for v in votes if v[TAIL + 1] is not None]
        return {
            "prompt": item.prompt,
            "response": response[2],
            "labels": ctx.project.span_labels,
            "spans": agg.merge_spans(per_vote, ctx.options.span_threshold),
            **_item(item),
            "response_id": response[0],
            "model": response[3],
            "aggregation": aggregation,
            "n_votes": len(votes),
            "agreement": agg.span_agreement(per_vote),
            "overall": sum(overall) / len(overall) if overall else None,
            "votes": [
                {
                    **_voter(v),
                    "spans": _annotator_spans(v),
                    "overall": v[TAIL + 1],
                    "created_at": v[AT],
                }
                for v in votes
            ],
        }

    if ctx.options.aggregate is Aggregate.none:
        return [row([v], "none") for v in item.votes]
    out = row(item.votes, "overlap")
    return [out] if _passes(ctx, out["agreement"]) else []


# --- critique ---------------------------------------------------------------------------------


def critique(ctx: Context, item: ItemVotes) -> list[Row]:
    response = item.responses[0]
    return [
        {
            "prompt": item.prompt,
            "response": response[2],
            "critique": v[TAIL],
            "rewrite": v[TAIL + 1],
            "rating": v[TAIL + 2],
            **_item(item),
            "response_id": response[0],
            "model": response[3],
            "annotation_id": v[ID],
            "source": v[SOURCE],
            "annotator_id": v[USER],
            "judge": v[JUDGE],
            "created_at": v[AT],
        }
        for v in item.votes
    ]


# --- unpaired ---------------------------------------------------------------------------------


def _unpaired_row(
    ctx: Context,
    item: ItemVotes,
    response: list[Any],
    label: bool,
    aggregation: str,
    agreement: float,
    rating: float | None,
    votes: list[Row],
) -> Row:
    return {
        "prompt": _text(ctx, "user", item.prompt),
        "completion": _text(ctx, "assistant", response[2]),
        "label": label,
        **_item(item),
        "kind": ctx.project.kind,
        "response_id": response[0],
        "model": response[3],
        "aggregation": aggregation,
        "n_votes": len(votes),
        "agreement": agreement,
        "rating": rating,
        "votes": votes,
    }


def _support_vote(v: list[Any], supports: bool | None, rating: int | None = None) -> Row:
    return {**_voter(v), "supports": supports, "rating": rating, "created_at": v[AT]}


def _pairwise_unpaired(ctx: Context, item: ItemVotes) -> list[Row]:
    by_id = {r[0]: r for r in item.responses}
    first, second = item.responses[0][0], item.responses[1][0]
    rows: list[Row] = []
    if ctx.options.aggregate is Aggregate.none:
        for v in item.votes:
            if v[TAIL] is None:
                ctx.skip("tie")
                continue
            loser = second if v[TAIL] == first else first
            for rid, label in ((v[TAIL], True), (loser, False)):
                vote = _support_vote(v, True)
                rows.append(_unpaired_row(ctx, item, by_id[rid], label, "none", 1.0, None, [vote]))
        return rows
    m = agg.majority([v[TAIL] for v in item.votes], first, second)
    if m.winner is None or m.loser is None:
        ctx.skip("tie")
        return []
    if not _passes(ctx, m.agreement):
        return []
    votes = [_support_vote(v, None if v[TAIL] is None else v[TAIL] == m.winner) for v in item.votes]
    for rid, label in ((m.winner, True), (m.loser, False)):
        rows.append(
            _unpaired_row(ctx, item, by_id[rid], label, "majority", m.agreement, None, votes)
        )
    return rows


def _ranking_unpaired(ctx: Context, item: ItemVotes) -> list[Row]:
    by_id = {r[0]: r for r in item.responses}
    ids = [r[0] for r in item.responses]
    rows: list[Row] = []
    if ctx.options.aggregate is Aggregate.none:
        for v in item.votes:
            for rid, label in ((v[TAIL][0], True), (v[TAIL][-1], False)):
                vote = _support_vote(v, True)
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
        votes = [_support_vote(v, s) for v, s in zip(item.votes, support, strict=True)]
        rows.append(_unpaired_row(ctx, item, by_id[rid], label, "borda", agreement, None, votes))
    return rows


def _rated_unpaired(ctx: Context, item: ItemVotes) -> list[Row]:
    """Critique and span items: the rating (critique) or overall rating (span) vs a threshold."""
    response = item.responses[0]
    at = TAIL + 2 if ctx.project.kind == "critique" else TAIL + 1
    rated = [v for v in item.votes if v[at] is not None]
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
        side = agg.rating_side([v[at] for v in group], threshold)
        if side.above is None:
            ctx.skip("neutral_rating")
            continue
        if not _passes(ctx, side.agreement):
            continue
        votes = [_support_vote(v, supports(v[at], side.above), v[at]) for v in group]
        rows.append(
            _unpaired_row(
                ctx, item, response, side.above, aggregation, side.agreement, side.mean, votes
            )
        )
    return rows


def unpaired(ctx: Context, item: ItemVotes) -> list[Row]:
    if ctx.project.kind == "pairwise":
        return _pairwise_unpaired(ctx, item)
    if ctx.project.kind == "ranking":
        return _ranking_unpaired(ctx, item)
    return _rated_unpaired(ctx, item)


# --- raw --------------------------------------------------------------------------------------


def raw(ctx: Context, item: ItemVotes) -> list[Row]:
    responses = [
        {"id": r[0], "external_id": r[1], "text": r[2], "model": r[3]} for r in item.responses
    ]
    # RAW_TAIL: judge_id, payload, shown_order, schema_version, time_spent_ms, over_quota,
    # gold_score, assignment_id, client_submission_id
    return [
        {
            "annotation_id": v[ID],
            "project_id": ctx.project.id,
            "kind": ctx.project.kind,
            "item_id": item.id,
            "external_id": item.external_id,
            "prompt": item.prompt,
            "responses": responses,
            "metadata": item.metadata,
            "priority": item.priority,
            "is_gold": item.is_gold,
            "gold_answer": item.gold_answer,
            "source": v[SOURCE],
            "annotator_id": v[USER],
            "judge_id": v[TAIL],
            "judge": v[JUDGE],
            "payload": orjson.dumps(v[TAIL + 1], option=orjson.OPT_SORT_KEYS).decode(),
            "shown_order": v[TAIL + 2],
            "schema_version": v[TAIL + 3],
            "time_spent_ms": v[TAIL + 4],
            "over_quota": v[TAIL + 5],
            "gold_score": v[TAIL + 6],
            "assignment_id": v[TAIL + 7],
            "client_submission_id": v[TAIL + 8],
            "created_at": v[AT],
        }
        for v in item.votes
    ]


Builder = Callable[[Context, ItemVotes], list[Row]]


def builder(schema: Schema, kind: str) -> Builder:
    if schema is Schema.preference:
        return pairwise_preference if kind == "pairwise" else ranking_preference
    return {
        Schema.ranking: ranking,
        Schema.spans: spans,
        Schema.critique: critique,
        Schema.unpaired: unpaired,
        Schema.raw: raw,
    }[schema]
