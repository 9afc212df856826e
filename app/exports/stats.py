"""Counts gathered while an export streams: the manifest's numbers and the card's tables."""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.annotations.models import AnnotationSource
from app.annotations.votes import ItemVotes, VoteHead
from app.exports.rows import Context, Row
from app.exports.schemas import Schema
from app.projects.rules import TaskKind


def _bucket(tenth: int) -> str:
    """Agreement histogram bins of width 0.1; exactly 1.0 has a bin of its own."""
    return "1.0" if tenth >= 10 else f"{tenth / 10:.1f}-{(tenth + 1) / 10:.1f}"


@dataclass
class Stats:
    schema: Schema
    rows: int = 0
    items_considered: int = 0
    items_exported: int = 0
    votes: int = 0
    votes_read: int = 0
    votes_by_source: Counter[str] = field(default_factory=Counter)
    annotators: set[int | None] = field(default_factory=set)
    judges: set[int] = field(default_factory=set)
    highest_annotation_id: int | None = None
    # Every vote that made a row (8 bytes each): a snapshot writes them down, so that lineage
    # can name exactly the labels a model was trained on.
    label_ids: array[int] = field(default_factory=lambda: array("q"))
    first_vote_at: str | None = None
    last_vote_at: str | None = None
    agreement_sum: float = 0.0
    agreement_rows: int = 0
    agreement_hist: Counter[int] = field(default_factory=Counter)  # by tenths
    votes_per_row: Counter[int] = field(default_factory=Counter)
    balance: Counter[str] = field(default_factory=Counter)

    def observe(self, item: ItemVotes[Any], rows: list[Row]) -> None:
        """Count one item's rows and the votes behind them (those listed in its rows)."""
        self.items_considered += 1
        self.votes_read += len(item.votes)
        if not rows:
            return
        self.items_exported += 1
        self.rows += len(rows)
        for row in rows:
            if "agreement" in row:
                agreement = row["agreement"]
                self.agreement_sum += agreement
                self.agreement_rows += 1
                self.agreement_hist[min(int(agreement * 10), 10)] += 1
            if "n_votes" in row:
                self.votes_per_row[row["n_votes"]] += 1
            self._balance(item, row)
        used = item.votes
        if "votes" in rows[0] and any(len(row["votes"]) != len(used) for row in rows):
            # Some votes made no row (aggregate=none, unrated votes): count those that did.
            ids = {v["annotation_id"] for row in rows for v in row["votes"]}
            used = [v for v in item.votes if v.annotation_id in ids]
        self._votes(used)

    def _votes(self, used: list[VoteHead]) -> None:
        if not used:
            return
        self.votes += len(used)
        self.label_ids.extend(v.annotation_id for v in used)
        ai = [v.source for v in used].count(AnnotationSource.ai)
        if ai:
            self.votes_by_source["ai"] += ai
        if ai < len(used):
            self.votes_by_source["human"] += len(used) - ai
        self.annotators.update([v.annotator_id for v in used])
        if ai:
            self.judges.update([v.judge_id for v in used if v.judge_id is not None])
        top = used[-1].annotation_id  # votes come in id order
        if self.highest_annotation_id is None or top > self.highest_annotation_id:
            self.highest_annotation_id = top
        times = [v.created_at for v in used]
        first, last = min(times), max(times)
        if self.first_vote_at is None or first < self.first_vote_at:
            self.first_vote_at = first
        if self.last_vote_at is None or last > self.last_vote_at:
            self.last_vote_at = last

    def _balance(self, item: ItemVotes[Any], row: Row) -> None:
        b = self.balance
        if self.schema is Schema.preference:
            b["chosen_is_first_response"] += row["chosen_id"] == item.responses[0].id
        elif self.schema is Schema.unpaired:
            b["label_true" if row["label"] else "label_false"] += 1
        elif self.schema is Schema.critique:
            b["no_rating" if row["rating"] is None else f"rating_{row['rating']}"] += 1
        elif self.schema is Schema.spans:
            for s in row["spans"]:
                b[f"merged_spans:{s['label']}"] += 1
            for v in row["votes"]:
                for s in v["spans"]:
                    b[f"annotator_spans:{s['label']}"] += 1
        elif self.schema is Schema.ranking:
            b[f"responses_{len(row['responses'])}"] += 1
        else:
            b[f"source_{row['source']}"] += 1

    def counts(self, ctx: Context) -> dict[str, Any]:
        """The manifest's counts and distributions (JSON-ready, keys sorted where open-ended)."""
        mean = self.agreement_sum / self.agreement_rows if self.agreement_rows else None
        balance: dict[str, Any] = dict(sorted(self.balance.items()))
        if self.schema is Schema.preference and ctx.project.kind is TaskKind.pairwise:
            first, second = ctx.shown_first
            balance["votes_for_response_shown_first"] = first
            balance["votes_for_response_shown_second"] = second
        return {
            "rows": self.rows,
            "items": self.items_exported,
            "items_with_votes": self.items_considered,
            "votes": self.votes,
            "votes_read": self.votes_read,
            "votes_by_source": dict(sorted(self.votes_by_source.items())),
            "annotators": len(self.annotators - {None}),
            "judges": len(self.judges),
            "excluded": dict(sorted(ctx.excluded.items())),
            "agreement": {
                "mean": mean,
                "histogram": {_bucket(k): v for k, v in sorted(self.agreement_hist.items())},
            },
            "votes_per_row": {str(k): v for k, v in sorted(self.votes_per_row.items())},
            "balance": balance,
            "first_vote_at": self.first_vote_at,
            "last_vote_at": self.last_vote_at,
        }


# Why items with votes made no row, in the user's terms (keys of Context.excluded).
_LEFT_OUT = {
    "items_below_min_votes": "fewer votes than min_votes",
    "tie": "a tie (as many votes each way)",
    "below_min_agreement": "agreement below min_agreement",
    "no_rating": "votes without a rating (this schema labels by rating)",
    "neutral_rating": "a rating exactly at rating_threshold (neither good nor bad)",
}


def empty_reason(counts: dict[str, Any]) -> str | None:
    """Why an export has no rows (None when it has some): one sentence, ASCII only so that it
    can travel in a response header as well as in the manifest."""
    if counts["rows"]:
        return None
    considered = counts["items_with_votes"]
    if not considered:
        return (
            "No item has votes that these options select (check source, annotator_ids,"
            " judge_ids, the dates, gold and the metadata filters), or nothing is annotated yet."
        )
    why = [
        f"{_LEFT_OUT.get(k, k.replace('_', ' '))}: {n}"
        for k, n in sorted(counts["excluded"].items(), key=lambda kv: -kv[1])
    ]
    detail = "; ".join(why) if why else "no vote gave this schema anything to write"
    return f"{considered} item(s) have votes but none made a row. Left out: {detail}."
