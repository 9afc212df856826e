"""The assignment engine: lease the next item to an annotator, take submissions and skips.

Invariant, kept under any concurrency: for every item,
    items.remaining = overlap - live leases - human annotations counted toward overlap
so `remaining > 0` is exactly "a slot is free". Claims lock candidate items with
FOR UPDATE SKIP LOCKED and decrement `remaining` in the same statement; a unique
(item_id, user_id) on assignments rules out serving an item twice to one annotator; claims by
the same annotator in one project are serialised by a transaction-scoped advisory lock.
Expired leases are reclaimed lazily (status -> expired, remaining + 1) at the next claim.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.annotations import gold
from app.annotations.payloads import SCHEMA_VERSION, TaskContext, parse, resolve
from app.assignments.errors import AssignmentClosed, NotYourAssignment, SubmissionIdReused
from app.assignments.models import AssignmentStatus
from app.auth.models import Role
from app.auth.service import Principal
from app.errors import Conflict, NotFound
from app.projects.errors import NotAMember
from app.projects.rules import TaskRules

# The lease the caller already holds, and whether any lease of the project has run out (then
# the claim reclaims first): one round trip on the common path.
_RESUME = text(
    """
    SELECT
        (SELECT id FROM assignments
         WHERE user_id = :uid AND project_id = :pid AND status = 'leased' AND expires_at > now()
         ORDER BY id LIMIT 1) AS held,
        EXISTS (
            SELECT 1 FROM assignments
            WHERE project_id = :pid AND status = 'leased' AND expires_at <= now()
        ) AS any_expired
    """
)

# Only one reclaimer per project at a time (try-lock), so reclaimers never wait on each other.
_RECLAIM = text(
    """
    WITH go AS (
        SELECT pg_try_advisory_xact_lock(hashtextextended('tandem-reclaim:' || :pid, 0)) AS ok
    ), expired AS (
        UPDATE assignments a SET status = 'expired'
        FROM go
        WHERE go.ok AND a.project_id = :pid AND a.status = 'leased' AND a.expires_at <= now()
        RETURNING a.item_id
    )
    UPDATE items i SET remaining = i.remaining + e.n
    FROM (SELECT item_id, count(*) AS n FROM expired GROUP BY item_id) e
    WHERE i.id = e.item_id
    """
)

_CLAIM = """
    WITH candidate AS (
        SELECT i.id FROM items i
        WHERE i.project_id = :pid AND i.remaining > 0
          -- A scalar subquery, not NOT EXISTS: it cannot be turned into an anti-join, so it
          -- stays one probe of the (item_id, user_id) index even when statistics are stale.
          AND COALESCE((
              SELECT a.status FROM assignments a WHERE a.item_id = i.id AND a.user_id = :uid
          ), 'expired') = 'expired'
        ORDER BY i.priority DESC, i.remaining DESC, i.id
        LIMIT 1
        FOR UPDATE {skip}
    ), taken AS (
        UPDATE items i SET remaining = i.remaining - 1
        FROM candidate c WHERE i.id = c.id
        RETURNING i.id
    )
    , claimed AS (
    INSERT INTO assignments AS a
        (project_id, item_id, user_id, status, shown_order, leased_at, expires_at)
    SELECT :pid, t.id, :uid, 'leased',
           (SELECT array_agg(r.id ORDER BY random()) FROM responses r WHERE r.item_id = t.id),
           now(), now() + make_interval(secs => :lease)
    FROM taken t
    ON CONFLICT (item_id, user_id) DO UPDATE
        -- An annotator's own expired lease comes back with its shuffle and draft intact.
        SET status = 'leased', leased_at = EXCLUDED.leased_at, expires_at = EXCLUDED.expires_at
        WHERE a.status = 'expired'
    RETURNING a.id, a.item_id, a.expires_at, a.draft, a.shown_order
    )
    SELECT c.id AS assignment_id, c.expires_at, c.draft, c.shown_order,
           i.id AS item_id, i.external_id, i.prompt,
           (SELECT json_object_agg(r.id, r.text) FROM responses r WHERE r.item_id = i.id) AS texts
    FROM claimed c JOIN items i ON i.id = c.item_id
"""
# First pass skips rows other claimers hold; if that finds nothing, a second pass waits for
# them, so a locked-but-open last item is not mistaken for "nothing left".
_CLAIM_SKIP = text(_CLAIM.format(skip="SKIP LOCKED"))
_CLAIM_WAIT = text(_CLAIM.format(skip=""))

_TASK = text(
    """
    SELECT a.id AS assignment_id, a.expires_at, a.draft, a.shown_order,
           i.id AS item_id, i.external_id, i.prompt,
           (SELECT json_object_agg(r.id, r.text) FROM responses r WHERE r.item_id = i.id) AS texts
    FROM assignments a JOIN items i ON i.id = a.item_id
    WHERE a.id = :aid
    """
)


# The project's rules, read with the membership check in one query (the same rule as
# projects.service.get_project: members only, admins all).
_PROJECT_AND_LOCK = text(
    f"""
    SELECT {TaskRules.COLUMNS},
           pg_advisory_xact_lock(hashtextextended('tandem-claim:' || p.id || ':' || :uid, 0)),
           p.archived_at IS NOT NULL AS archived
    FROM projects p
    WHERE p.id = :pid AND (:admin OR EXISTS (
        SELECT 1 FROM project_members m WHERE m.project_id = p.id AND m.user_id = :uid
    ))
    """
)


def _task(project: TaskRules, row: Any) -> dict[str, Any]:
    texts = row["texts"]
    return {
        "assignment_id": row["assignment_id"],
        "project_id": project.project_id,
        "kind": project.kind,
        "expires_at": row["expires_at"],
        "draft": row["draft"],
        "item": {
            "id": row["item_id"],
            "external_id": row["external_id"],
            "prompt": row["prompt"],
            "responses": [{"id": rid, "text": texts[str(rid)]} for rid in row["shown_order"]],
        },
    }


def next_task(session: Session, principal: Principal, project_id: int) -> dict[str, Any] | None:
    """Lease the next item to the caller (or return the lease they already hold); None if done."""
    # Membership check and the per-annotator claim lock in one statement: the lock is taken
    # only for a row that passed the check. The resume check must come after, in a statement
    # of its own, so that its snapshot sees what a concurrent claim by the same caller did.
    found = session.execute(
        _PROJECT_AND_LOCK, {"pid": project_id, "uid": principal.id, "admin": principal.is_admin}
    ).one_or_none()
    if found is None:
        raise NotFound(f"Project {project_id} does not exist or you are not a member of it.")
    if found.archived:
        # Hidden from annotators (as projects.service.visible_to); closed to everyone else.
        if not principal.has_role(Role.researcher):
            raise NotFound(f"Project {project_id} does not exist or you are not a member of it.")
        raise Conflict(f"Project {project_id} is archived: unarchive it to hand out tasks.")
    project = TaskRules.from_row(found)
    params = {"pid": project.project_id, "uid": principal.id}
    held, any_expired = session.execute(_RESUME, params).one()
    if held is not None:
        return _task(project, session.execute(_TASK, {"aid": held}).mappings().one())
    if any_expired:
        session.execute(_RECLAIM, {"pid": project.project_id})
    claim = {**params, "lease": project.lease_seconds}
    row = session.execute(_CLAIM_SKIP, claim).mappings().one_or_none()
    if row is None:
        row = session.execute(_CLAIM_WAIT, claim).mappings().one_or_none()
    return None if row is None else _task(project, row)


@dataclass(frozen=True, slots=True)
class Submitted:
    annotation_id: int
    created: bool
    over_quota: bool


_LOCK_ASSIGNMENT = text(
    f"""
    SELECT {TaskRules.COLUMNS},
           a.id, a.user_id, a.item_id, a.status, a.shown_order,
           i.is_gold, i.gold_answer,
           (:admin OR EXISTS (
               SELECT 1 FROM project_members m WHERE m.project_id = p.id AND m.user_id = :uid
           )) AS is_member,
           (SELECT json_object_agg(r.id, r.text) FROM responses r WHERE r.item_id = i.id) AS texts,
           (SELECT array_agg(r.id ORDER BY r.position) FROM responses r WHERE r.item_id = i.id)
               AS ids_by_position
    FROM assignments a JOIN items i ON i.id = a.item_id JOIN projects p ON p.id = a.project_id
    WHERE a.id = :aid
    FOR UPDATE OF a
    """
)


def _own_assignment(
    session: Session, principal: Principal, assignment_id: int
) -> tuple[dict[str, Any], TaskRules]:
    """Lock the caller's assignment; with its project's rules, if the caller is a member."""
    found = session.execute(
        _LOCK_ASSIGNMENT, {"aid": assignment_id, "uid": principal.id, "admin": principal.is_admin}
    ).one_or_none()
    if found is None:
        raise NotFound(f"Assignment {assignment_id} does not exist.")
    row = found._mapping
    if row["user_id"] != principal.id:
        raise NotYourAssignment(f"Assignment {assignment_id} belongs to another annotator.")
    if not row["is_member"]:
        raise NotAMember(f"You are no longer a member of project {row['project_id']}.")
    return dict(row), TaskRules.from_row(found)


def _existing(session: Session, sql: str, params: dict[str, Any]) -> Submitted | None:
    row = session.execute(text(sql), params).one_or_none()
    return None if row is None else Submitted(row[0], created=False, over_quota=row[1])


_INSERT_ANNOTATION = text(
    """
    WITH done AS (
        UPDATE assignments SET status = 'submitted', finished_at = now(), draft = NULL
        WHERE id = :aid
    )
    INSERT INTO annotations (project_id, item_id, assignment_id, source, user_id, payload,
        schema_version, shown_order, time_spent_ms, client_submission_id, over_quota, gold_score)
    VALUES (:pid, :iid, :aid, 'human', :uid, CAST(:payload AS jsonb), :ver, :shown, :ms, :csid,
        :oq, :gs)
    RETURNING id
    """
)


def submit(
    session: Session,
    principal: Principal,
    assignment_id: int,
    raw_payload: object,
    time_spent_ms: int | None = None,
    client_submission_id: str | None = None,
) -> Submitted:
    """Store the caller's annotation for an assignment, exactly once."""
    a, project = _own_assignment(session, principal, assignment_id)
    if a["status"] == AssignmentStatus.submitted:
        done = _existing(
            session,
            "SELECT id, over_quota FROM annotations WHERE assignment_id = :aid",
            {"aid": assignment_id},
        )
        assert done is not None
        return done
    if client_submission_id is not None:
        prior = _existing(
            session,
            "SELECT id, over_quota FROM annotations"
            " WHERE user_id = :uid AND client_submission_id = :c",
            {"uid": principal.id, "c": client_submission_id},
        )
        if prior is not None:
            raise SubmissionIdReused(
                "client_submission_id was already used for another assignment."
            )
    if a["status"] == AssignmentStatus.skipped:
        raise AssignmentClosed(f"Assignment {assignment_id} was skipped; ask for a new task.")

    texts = {int(k): v for k, v in a["texts"].items()}
    ctx = TaskContext(project, list(a["shown_order"]), texts)
    stored = resolve(parse(project.kind, raw_payload), ctx)

    over_quota = False
    if a["status"] == AssignmentStatus.expired:
        # The lease ran out and was reclaimed: count this answer only if the slot is still free.
        took = session.execute(
            text(
                "UPDATE items SET remaining = remaining - 1 WHERE id = :iid AND remaining > 0"
                " RETURNING id"
            ),
            {"iid": a["item_id"]},
        ).scalar_one_or_none()
        over_quota = took is None

    gold_score = None
    if a["is_gold"] and a["gold_answer"] is not None:
        gold_score = gold.score(project.kind, a["gold_answer"], stored, list(a["ids_by_position"]))

    annotation_id = session.execute(
        _INSERT_ANNOTATION,
        {
            "pid": project.project_id,
            "iid": a["item_id"],
            "aid": assignment_id,
            "uid": principal.id,
            "payload": _json(stored),
            "ver": SCHEMA_VERSION,
            "shown": list(a["shown_order"]),
            "ms": time_spent_ms,
            "csid": client_submission_id,
            "oq": over_quota,
            "gs": gold_score,
        },
    ).scalar_one()
    return Submitted(annotation_id, created=True, over_quota=over_quota)


def skip(
    session: Session, principal: Principal, assignment_id: int, reason: str | None
) -> AssignmentStatus:
    """Give the item back; the caller will not be served it again. Returns the new status."""
    a, _ = _own_assignment(session, principal, assignment_id)
    if a["status"] == AssignmentStatus.skipped:
        return AssignmentStatus.skipped
    if a["status"] == AssignmentStatus.submitted:
        raise AssignmentClosed(f"Assignment {assignment_id} was already submitted.")
    if a["status"] == AssignmentStatus.leased:
        session.execute(
            text("UPDATE items SET remaining = remaining + 1 WHERE id = :iid"),
            {"iid": a["item_id"]},
        )
    session.execute(
        text(
            "UPDATE assignments SET status = 'skipped', finished_at = now(), skip_reason = :r"
            " WHERE id = :aid"
        ),
        {"aid": assignment_id, "r": reason},
    )
    return AssignmentStatus.skipped


def save_draft(
    session: Session, principal: Principal, assignment_id: int, draft: dict[str, Any]
) -> datetime:
    """Autosave work in progress on a live or expired lease (never on a finished one)."""
    a, _ = _own_assignment(session, principal, assignment_id)
    if a["status"] not in (AssignmentStatus.leased, AssignmentStatus.expired):
        raise AssignmentClosed(
            f"Assignment {assignment_id} is {a['status']}; drafts are for open tasks."
        )
    saved: datetime = session.execute(
        text("UPDATE assignments SET draft = CAST(:d AS jsonb) WHERE id = :aid RETURNING now()"),
        {"aid": assignment_id, "d": _json(draft)},
    ).scalar_one()
    return saved


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
