"""The items browser (researchers): items with their state, votes, agreement and gold flag,
filtered and in keyset pages, and one item with every vote, skip and lease behind it.

Agreement is the exports' own: pairwise items the majority's share of all votes (app.quality.
aggregate.majority, defined for ties too: a 1-1 split is 0.5); other kinds the consensus row
builder of their export (ranking: Borda pair agreement; span: pairwise F1; critique: rating side
share), so the number here is the one an export would write. Items without one show none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.annotations.votes import VoteFilter, iter_item_votes, vote_kind
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.errors import NotFound
from app.exports.rows import Context, builder
from app.exports.schemas import ExportOptions, Gold, Schema
from app.pagination import Keyset
from app.projects.models import Project
from app.projects.rules import TaskKind
from app.projects.service import get_project
from app.quality import aggregate as agg

# The consensus schema whose `agreement` an item shows.
AGREEMENT_SCHEMA = {
    TaskKind.pairwise: Schema.preference,
    TaskKind.ranking: Schema.ranking,
    TaskKind.span: Schema.spans,
    TaskKind.critique: Schema.unpaired,
}
# With a filter, one page looks at this many items at most (in windows of SCAN_BATCH ids); the
# cursor then points past them, so a page costs the same however rare the matches are.
SCAN_LIMIT = 5000
SCAN_BATCH = 500


class ItemState(StrEnum):
    waiting = "waiting"  # no counted human vote yet
    in_progress = "in_progress"  # some, fewer than overlap
    complete = "complete"  # overlap counted human votes


@dataclass(frozen=True, slots=True)
class ItemFilter:
    state: ItemState | None = None
    gold: bool | None = None
    min_votes: int | None = None
    max_agreement: float | None = None
    min_agreement: float | None = None


@dataclass(frozen=True, slots=True)
class ItemRow:
    id: int
    external_id: str | None
    prompt: str
    is_gold: bool
    human_votes: int
    ai_votes: int
    counted: int
    skips: int
    live_leases: int
    state: ItemState
    agreement: float | None


_WINDOW = "SELECT id FROM items WHERE project_id = :pid{after} ORDER BY id LIMIT :scan"
_ROWS = """
    SELECT i.id, i.external_id, left(i.prompt, 240) AS prompt, i.is_gold,
           v.human_votes, v.ai_votes, v.counted, s.skips, s.live_leases
    FROM ({window}) w
    JOIN items i ON i.id = w.id
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE a.source = 'human') AS human_votes,
               count(*) FILTER (WHERE a.source = 'ai') AS ai_votes,
               count(*) FILTER (WHERE a.source = 'human' AND NOT a.over_quota) AS counted
        FROM annotations a WHERE a.item_id = i.id) v
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE x.status = 'skipped') AS skips,
               count(*) FILTER (WHERE x.status = 'leased' AND x.expires_at > now()) AS live_leases
        FROM assignments x WHERE x.item_id = i.id) s
    WHERE {where}
    ORDER BY i.id
"""


def _where(f: ItemFilter, params: dict[str, Any]) -> str:
    conditions = ["true"]
    if f.gold is not None:
        conditions.append("i.is_gold = :gold")
        params["gold"] = f.gold
    if f.state is ItemState.waiting:
        conditions.append("v.counted = 0")
    elif f.state is ItemState.in_progress:
        conditions.append("v.counted > 0 AND v.counted < :overlap")
    elif f.state is ItemState.complete:
        conditions.append("v.counted >= :overlap")
    if f.min_votes is not None:
        conditions.append("v.human_votes + v.ai_votes >= :min_votes")
        params["min_votes"] = f.min_votes
    return " AND ".join(conditions)


def _state(counted: int, overlap: int) -> ItemState:
    if counted >= overlap:
        return ItemState.complete
    return ItemState.in_progress if counted else ItemState.waiting


def agreements(session: Session, project: Project, item_ids: Sequence[int]) -> dict[int, float]:
    """Each item's agreement as its consensus export row has it (items without a row, such as
    ties or single unrated votes, are left out)."""
    if not item_ids:
        return {}
    kind = TaskKind(project.kind)
    schema = AGREEMENT_SCHEMA[kind]
    options = ExportOptions.model_validate({"schema": schema, "gold": Gold.include})
    ctx = Context(options, project.rules())
    build = builder(schema, kind)
    out: dict[int, float] = {}
    filters = VoteFilter(item_ids=list(item_ids), gold=None)
    for batch in iter_item_votes(session.connection(), project.id, vote_kind(kind), filters):
        for item in batch:
            if kind is TaskKind.pairwise and item.votes:
                first, second = item.responses[0].id, item.responses[1].id
                m = agg.majority([v.preferred for v in item.votes], first, second)
                out[item.id] = m.agreement
                continue
            rows = build(ctx, item) if item.votes else []
            values = [r["agreement"] for r in rows if r.get("agreement") is not None]
            if values:
                out[item.id] = sum(values) / len(values)
    return out


def _row(r: Any, overlap: int, share: float | None) -> ItemRow:
    return ItemRow(
        id=r["id"],
        external_id=r["external_id"],
        prompt=r["prompt"],
        is_gold=r["is_gold"],
        human_votes=int(r["human_votes"]),
        ai_votes=int(r["ai_votes"]),
        counted=int(r["counted"]),
        skips=int(r["skips"]),
        live_leases=int(r["live_leases"]),
        state=_state(int(r["counted"]), overlap),
        agreement=share,
    )


def _passes(f: ItemFilter, share: float | None) -> bool:
    if f.max_agreement is None and f.min_agreement is None:
        return True
    if share is None:
        return False
    if f.max_agreement is not None and share > f.max_agreement:
        return False
    return f.min_agreement is None or share >= f.min_agreement


def list_items(
    session: Session, principal: Principal, project_id: int, page: Keyset, f: ItemFilter
) -> tuple[Project, list[ItemRow], str | None]:
    """One page of items (id order) and the cursor of the next one (None at the end).

    Items are read in windows of the project's next ids and filtered within each window; a
    filtered page looks at SCAN_LIMIT items at most and then hands out a cursor past them (so
    it may show fewer rows than a page holds, or none, with a next page still to come)."""
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    agreement_filter = f.max_agreement is not None or f.min_agreement is not None
    filtered = agreement_filter or f != ItemFilter()
    window = SCAN_BATCH if filtered else page.limit + 1
    found: list[ItemRow] = []
    after = page.after_id
    scanned = 0
    while True:
        params: dict[str, Any] = {"pid": project.id, "after": after, "scan": window}
        ids = _WINDOW.format(after="" if after is None else " AND id > :after")
        count, last = session.execute(
            text(f"SELECT count(*), max(id) FROM ({ids}) w"), params
        ).one()
        if not count:
            break
        params["overlap"] = project.overlap
        sql = _ROWS.format(window=ids, where=_where(f, params))
        rows = session.execute(text(sql), params).mappings().all()
        shares = agreements(session, project, [r["id"] for r in rows]) if agreement_filter else {}
        for r in rows:
            share = shares.get(r["id"])
            if _passes(f, share):
                found.append(_row(r, project.overlap, share))
            if len(found) > page.limit:
                break
        scanned += count
        after = last
        if len(found) > page.limit or count < window:
            break
        if scanned >= SCAN_LIMIT:
            return project, _with_agreement(session, project, found), str(after)
    if len(found) > page.limit:
        shown = _with_agreement(session, project, found[: page.limit])
        return project, shown, str(found[page.limit - 1].id)
    return project, _with_agreement(session, project, found), None


def _with_agreement(session: Session, project: Project, rows: list[ItemRow]) -> list[ItemRow]:
    """Fill in the agreement of rows that were not filtered by it (only the page's are read)."""
    missing = [r.id for r in rows if r.agreement is None]
    shares = agreements(session, project, missing)
    return [
        r if r.agreement is not None else dataclasses.replace(r, agreement=shares.get(r.id))
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Vote:
    annotation_id: int
    source: str
    who: str  # the annotator's email, or judge:<id>
    payload: dict[str, Any]
    shown_order: list[int]
    created_at: datetime
    time_spent_ms: int | None
    over_quota: bool
    gold_score: float | None
    assignment_id: int | None


@dataclass(frozen=True, slots=True)
class Skip:
    assignment_id: int
    email: str
    reason: str | None
    at: datetime | None


@dataclass(frozen=True, slots=True)
class ItemDetail:
    project: Project
    item: dict[str, Any]
    responses: list[dict[str, Any]]
    votes: list[Vote]
    skips: list[Skip]
    live_leases: int
    state: ItemState
    agreement: float | None


def _judge_label(judge_id: int | None, name: str | None) -> str:
    """An AI vote's author as exports name it (judge:<id>), with the judge's name."""
    if judge_id is None:
        return "?"
    return f"judge:{judge_id} ({name})" if name else f"judge:{judge_id}"


def item_detail(
    session: Session, principal: Principal, project_id: int, item_id: int
) -> ItemDetail:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    item = (
        session.execute(
            text(
                "SELECT id, external_id, prompt, metadata, priority, is_gold, gold_answer,"
                " remaining, created_at FROM items WHERE id = :iid AND project_id = :pid"
            ),
            {"iid": item_id, "pid": project.id},
        )
        .mappings()
        .one_or_none()
    )
    if item is None:
        raise NotFound(f"Item {item_id} does not exist in project {project.id}.")
    responses = [
        dict(r)
        for r in session.execute(
            text(
                "SELECT id, position, external_id, text, model, lineage FROM responses"
                " WHERE item_id = :iid ORDER BY position"
            ),
            {"iid": item_id},
        ).mappings()
    ]
    votes = [
        Vote(
            annotation_id=r["id"],
            source=r["source"],
            who=r["email"] or _judge_label(r["judge_id"], r["judge_name"]),
            payload=r["payload"],
            shown_order=list(r["shown_order"] or []),
            created_at=r["created_at"],
            time_spent_ms=r["time_spent_ms"],
            over_quota=r["over_quota"],
            gold_score=r["gold_score"],
            assignment_id=r["assignment_id"],
        )
        for r in session.execute(
            text(
                "SELECT a.id, a.source, u.email, a.judge_id, j.name AS judge_name, a.payload,"
                " a.shown_order, a.created_at, a.time_spent_ms, a.over_quota, a.gold_score,"
                " a.assignment_id"
                " FROM annotations a LEFT JOIN users u ON u.id = a.user_id"
                " LEFT JOIN judges j ON j.id = a.judge_id"
                " WHERE a.item_id = :iid ORDER BY a.id"
            ),
            {"iid": item_id},
        ).mappings()
    ]
    skips = [
        Skip(r["id"], r["email"], r["skip_reason"], r["finished_at"])
        for r in session.execute(
            text(
                "SELECT x.id, u.email, x.skip_reason, x.finished_at FROM assignments x"
                " JOIN users u ON u.id = x.user_id"
                " WHERE x.item_id = :iid AND x.status = 'skipped' ORDER BY x.id"
            ),
            {"iid": item_id},
        ).mappings()
    ]
    live = session.execute(
        text(
            "SELECT count(*) FROM assignments WHERE item_id = :iid AND status = 'leased'"
            " AND expires_at > now()"
        ),
        {"iid": item_id},
    ).scalar_one()
    counted = sum(1 for v in votes if v.source == "human" and not v.over_quota)
    return ItemDetail(
        project=project,
        item=dict(item),
        responses=responses,
        votes=votes,
        skips=skips,
        live_leases=int(live),
        state=_state(counted, project.overlap),
        agreement=agreements(session, project, [item_id]).get(item_id),
    )
