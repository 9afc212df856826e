"""Re-import a `raw` export into a project: its items, and its annotations exactly as they were.

Items are matched by external_id (an item already in the project is reused when its responses
are the same texts) or created; payloads and shown orders are rewritten from the exported
response ids to the project's. Human annotations get a submitted assignment, as if made here, so
the assignment engine never serves that annotator the item again and overlap stays exact.
Runs in the caller's transaction: a bad row anywhere leaves the project unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.annotations.models import AnnotationSource
from app.errors import Invalid
from app.projects.models import Project
from app.projects.rules import TaskKind


@dataclass
class RestoreResult:
    items_created: int = 0
    items_reused: int = 0
    annotations: int = 0
    skipped: int = 0  # an annotator already has this item in the project


def _remap(kind: TaskKind, payload: dict[str, Any], ids: dict[int, int]) -> dict[str, Any]:
    def rid(value: Any) -> Any:
        return None if value is None else ids[value]

    if kind is TaskKind.pairwise:
        return {
            **payload,
            "preferred": rid(payload.get("preferred")),
            "rejected": rid(payload.get("rejected")),
            "aspects": {k: rid(v) for k, v in (payload.get("aspects") or {}).items()},
        }
    if kind is TaskKind.ranking:
        return {**payload, "order": [ids[r] for r in payload["order"]]}
    return {**payload, "response_id": rid(payload.get("response_id"))}


def _item(
    session: Session, project: Project, n: int, row: dict[str, Any]
) -> tuple[int, list[int], bool]:
    """The target item id and its response ids in import order; True when created."""
    texts = [r["text"] for r in row["responses"]]
    if row.get("external_id") is not None:
        found = session.execute(
            text(
                "SELECT i.id, array_agg(r.id ORDER BY r.position), array_agg(r.text ORDER BY"
                " r.position) FROM items i JOIN responses r ON r.item_id = i.id"
                " WHERE i.project_id = :pid AND i.external_id = :ext GROUP BY i.id"
            ),
            {"pid": project.id, "ext": row["external_id"]},
        ).one_or_none()
        if found is not None:
            if list(found[2]) != texts:
                raise Invalid(
                    f"row {n}: item {row['external_id']!r} is already in the project with other"
                    " responses.",
                    row=n,
                )
            return found[0], list(found[1]), False
    item_id = session.execute(
        text(
            "INSERT INTO items (project_id, external_id, prompt, metadata, priority, is_gold,"
            " gold_answer, remaining) VALUES (:pid, :ext, :prompt, CAST(:meta AS jsonb), :prio,"
            " :gold, CAST(:answer AS jsonb), :remaining) RETURNING id"
        ),
        {
            "pid": project.id,
            "ext": row.get("external_id"),
            "prompt": row["prompt"],
            "meta": row.get("metadata") or "{}",
            "prio": row.get("priority") or 0,
            "gold": bool(row.get("is_gold")),
            "answer": row.get("gold_answer"),
            "remaining": project.overlap,
        },
    ).scalar_one()
    response_ids = [
        session.execute(
            text(
                "INSERT INTO responses (item_id, position, external_id, text, model)"
                " VALUES (:iid, :pos, :ext, :text, :model) RETURNING id"
            ),
            {
                "iid": item_id,
                "pos": pos,
                "ext": r.get("external_id"),
                "text": r["text"],
                "model": r.get("model"),
            },
        ).scalar_one()
        for pos, r in enumerate(row["responses"])
    ]
    return item_id, response_ids, True


def _check(project: Project, n: int, row: Any) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise Invalid(f"row {n}: expected an object.", row=n)
    missing = {"kind", "item_id", "prompt", "responses", "source", "payload", "shown_order"} - set(
        row
    )
    if missing:
        raise Invalid(
            f"row {n}: not a raw export row (missing {', '.join(sorted(missing))}).", row=n
        )
    if row["kind"] != project.kind:
        raise Invalid(
            f"row {n}: a {row['kind']} annotation cannot go into a {project.kind} project.", row=n
        )
    if row["source"] not in list(AnnotationSource):
        raise Invalid(f"row {n}: source must be human or ai, not {row['source']!r}.", row=n)
    if row["source"] == AnnotationSource.human and row.get("annotator_id") is None:
        raise Invalid(f"row {n}: a human annotation without annotator_id.", row=n)
    if row["source"] == AnnotationSource.ai and row.get("judge_id") is None:
        raise Invalid(f"row {n}: an AI annotation without judge_id.", row=n)
    return row


def import_raw(
    session: Session, project: Project, rows: Iterable[tuple[int, Any]]
) -> RestoreResult:
    """Import raw export rows (numbered from 1) into `project`."""
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('tandem-import:' || :pid, 0))"),
        {"pid": project.id},
    )
    result = RestoreResult()
    items: dict[int, tuple[int, dict[int, int]]] = {}  # exported item id -> (item id, id map)
    for n, raw in rows:
        row = _check(project, n, raw)
        if row["item_id"] not in items:
            item_id, new_ids, created = _item(session, project, n, row)
            old_ids = [r["id"] for r in row["responses"]]
            items[row["item_id"]] = (item_id, dict(zip(old_ids, new_ids, strict=True)))
            result.items_created += created
            result.items_reused += not created
        item_id, ids = items[row["item_id"]]
        try:
            payload = _remap(project.kind, orjson.loads(row["payload"]), ids)
            shown = [ids[r] for r in row["shown_order"]]
        except (KeyError, TypeError, orjson.JSONDecodeError):
            raise Invalid(
                f"row {n}: payload or shown_order names an unknown response.", row=n
            ) from None
        assignment_id = None
        if row["source"] == AnnotationSource.ai:
            judge = row["judge_id"]
            found = session.execute(text("SELECT 1 FROM judges WHERE id = :j"), {"j": judge})
            if found.first() is None:
                raise Invalid(f"row {n}: judge {judge} is not a judge of this installation.", row=n)
        if row["source"] == AnnotationSource.human:
            user = row["annotator_id"]
            if (
                session.execute(text("SELECT 1 FROM users WHERE id = :u"), {"u": user}).first()
                is None
            ):
                raise Invalid(
                    f"row {n}: annotator {user} is not a user of this installation.", row=n
                )
            assignment_id = session.execute(
                text(
                    "INSERT INTO assignments (project_id, item_id, user_id, status, shown_order,"
                    " leased_at, expires_at, finished_at) VALUES (:pid, :iid, :uid, 'submitted',"
                    " :shown, CAST(:at AS timestamptz), CAST(:at AS timestamptz),"
                    " CAST(:at AS timestamptz))"
                    " ON CONFLICT (item_id, user_id) DO NOTHING RETURNING id"
                ),
                {
                    "pid": project.id,
                    "iid": item_id,
                    "uid": user,
                    "shown": shown,
                    "at": row["created_at"],
                },
            ).scalar_one_or_none()
            if assignment_id is None:
                result.skipped += 1
                continue
            if not row.get("over_quota"):
                session.execute(
                    text("UPDATE items SET remaining = remaining - 1 WHERE id = :iid"),
                    {"iid": item_id},
                )
        session.execute(
            text(
                "INSERT INTO annotations (project_id, item_id, assignment_id, source, user_id,"
                " judge_id, payload, schema_version, shown_order, time_spent_ms, over_quota,"
                " gold_score, created_at) VALUES (:pid, :iid, :aid, :source, :uid, :jid,"
                " CAST(:payload AS jsonb), :ver, :shown, :ms, :oq, :gs, CAST(:at AS timestamptz))"
            ),
            {
                "pid": project.id,
                "iid": item_id,
                "aid": assignment_id,
                "source": row["source"],
                "uid": row.get("annotator_id") if row["source"] == AnnotationSource.human else None,
                "jid": row.get("judge_id") if row["source"] == AnnotationSource.ai else None,
                "payload": orjson.dumps(payload).decode(),
                "ver": row.get("schema_version") or 1,
                "shown": shown,
                "ms": row.get("time_spent_ms"),
                "oq": bool(row.get("over_quota")),
                "gs": row.get("gold_score"),
                "at": row["created_at"],
            },
        )
        result.annotations += 1
    return result
