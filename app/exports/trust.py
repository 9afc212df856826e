"""What aggregation reads before the rows are built: adjudicated labels and Dawid-Skene labels.

Both are read in the export's own snapshot. Dawid-Skene needs every vote of the project at
once, so it runs before the item stream starts; crowd-kit is imported inside, so only the
snapshot job (and the CLI) ever compute it, never the web process.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from app.annotations.models import AnnotationSource
from app.annotations.votes import PAIRWISE, VoteFilter, read_votes

TIMESTAMP = r"""to_char(decided_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24\:MI\:SS.US"Z"')"""


def adjudications(conn: Connection, project_id: int) -> dict[int, dict[str, Any]]:
    rows = conn.execute(
        text(
            f"SELECT item_id, payload, decided_by, {TIMESTAMP} AS decided_at, note"
            " FROM adjudications WHERE project_id = :p"
        ),
        {"p": project_id},
    ).all()
    return {
        r.item_id: {
            "payload": r.payload,
            "decided_by": r.decided_by,
            "decided_at": r.decided_at,
            "note": r.note,
        }
        for r in rows
    }


def dawid_skene_labels(
    conn: Connection, project_id: int, filters: VoteFilter
) -> dict[int, int | None]:
    """Item id -> the preferred response id by Dawid-Skene (None: a tie), over the votes the
    export selects; humans and judges are raters alike (a judge is kept apart by its id)."""
    import numpy as np

    from app.quality.labels import FIRST, SECOND, TIE
    from app.quality.trust import dawid_skene

    votes = read_votes(conn, project_id, PAIRWISE, filters)
    if not votes:
        return {}
    pairs: dict[int, tuple[int, int]] = {}
    for item_id, first, second in conn.execute(
        text(
            "SELECT r.item_id, min(r.id) FILTER (WHERE r.position = 0),"
            " min(r.id) FILTER (WHERE r.position = 1)"
            " FROM responses r JOIN items i ON i.id = r.item_id WHERE i.project_id = :p"
            " GROUP BY r.item_id"
        ),
        {"p": project_id},
    ):
        pairs[item_id] = (first, second)
    items, raters, codes = [], [], []
    for v in votes:
        first, _ = pairs[v.item_id]
        items.append(v.item_id)
        # Users and judges are numbered apart: a judge's rater id is negative.
        raters.append(v.annotator_id if v.source is AnnotationSource.human else -(v.judge_id or 0))
        codes.append(TIE if v.preferred is None else FIRST if v.preferred == first else SECOND)
    t = dawid_skene(np.asarray(items), np.asarray(raters), np.asarray(codes), 3)
    out: dict[int, int | None] = {}
    for item_id, label in zip(t.items.tolist(), t.label.tolist(), strict=True):
        first, second = pairs[item_id]
        out[item_id] = None if label == TIE else first if label == FIRST else second
    return out
