"""Quality rules shared by the JSON API, the pages and the stats job: the cached snapshot and
its refresh, quality settings, gold pauses, the review queue and adjudication.

Reads never compute statistics: they serve the snapshot the `stats.refresh` job stored (one
primary-key lookup), say when it was taken, and ask for a new one (debounced) when annotations
arrived since. Nothing here imports the statistics libraries.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.errors import Invalid, NotFound
from app.jobs import service as jobs
from app.projects.models import Project
from app.projects.service import get_project
from app.quality.errors import AnnotatorPaused, NoLeaderboard
from app.quality.gold import GoldPolicy
from app.quality.jobs import REFRESH
from app.quality.models import Adjudication, QualitySettings

# A refresh is enqueued at most this often per project on its own; a researcher's explicit
# request goes through whenever no refresh is queued or running.
DEBOUNCE_SECONDS = 30
Source = Literal["all", "human", "ai"]


# --- settings ---------------------------------------------------------------------------------


def settings_of(session: Session, project_id: int) -> QualitySettings:
    found = session.get(QualitySettings, project_id)
    if found is None:
        return QualitySettings(
            project_id=project_id,
            gold_warn_below=0.7,
            gold_pause_below=None,
            gold_min_answers=10,
            review_below=0.6,
        )
    return found


def settings_dict(s: QualitySettings) -> dict[str, Any]:
    return {
        "gold_warn_below": s.gold_warn_below,
        "gold_pause_below": s.gold_pause_below,
        "gold_min_answers": s.gold_min_answers,
        "review_below": s.review_below,
    }


def gold_policy(session: Session, project_id: int) -> GoldPolicy:
    s = settings_of(session, project_id)
    return GoldPolicy(s.gold_warn_below, s.gold_pause_below, s.gold_min_answers)


def get_settings(session: Session, principal: Principal, project_id: int) -> dict[str, Any]:
    _researcher_project(session, principal, project_id)
    return settings_dict(settings_of(session, project_id))


def update_settings(
    session: Session, principal: Principal, project_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Apply the given fields (others keep their value); the policy is checked as a whole."""
    _researcher_project(session, principal, project_id)
    merged = {**settings_dict(settings_of(session, project_id)), **changes}
    GoldPolicy(merged["gold_warn_below"], merged["gold_pause_below"], merged["gold_min_answers"])
    session.execute(
        text(
            """
            INSERT INTO quality_settings AS q
                (project_id, gold_warn_below, gold_pause_below, gold_min_answers, review_below)
            VALUES (:p, :gold_warn_below, :gold_pause_below, :gold_min_answers, :review_below)
            ON CONFLICT (project_id) DO UPDATE SET
                gold_warn_below = EXCLUDED.gold_warn_below,
                gold_pause_below = EXCLUDED.gold_pause_below,
                gold_min_answers = EXCLUDED.gold_min_answers,
                review_below = EXCLUDED.review_below,
                updated_at = now()
            """
        ),
        {"p": project_id, **merged},
    )
    return merged


def _researcher_project(session: Session, principal: Principal, project_id: int) -> Project:
    require_role(principal, Role.researcher)
    return get_project(session, principal, project_id)


# --- the snapshot and its refresh -------------------------------------------------------------


def request_refresh(
    session: Session, project_id: int, created_by: int | None, *, force: bool = False
) -> int | None:
    """Enqueue a `stats.refresh` unless one is queued or running (its id is returned then) or,
    without `force`, one was asked for within DEBOUNCE_SECONDS. Concurrent callers race on one
    row update: at most one of them enqueues."""
    row = session.execute(
        text(
            """
            INSERT INTO project_stats AS s (project_id, requested_at) VALUES (:p, now())
            ON CONFLICT (project_id) DO UPDATE SET requested_at = now()
            WHERE NOT EXISTS (
                    SELECT 1 FROM jobs j
                    WHERE j.id = s.job_id AND j.status IN ('queued', 'running'))
              AND (:force OR s.requested_at IS NULL
                   OR s.requested_at < now() - make_interval(secs => :debounce))
            RETURNING project_id
            """
        ),
        {"p": project_id, "force": force, "debounce": DEBOUNCE_SECONDS},
    ).one_or_none()
    if row is None:
        current: int | None = session.execute(
            text(
                "SELECT s.job_id FROM project_stats s JOIN jobs j ON j.id = s.job_id"
                " WHERE s.project_id = :p AND j.status IN ('queued', 'running')"
            ),
            {"p": project_id},
        ).scalar_one_or_none()
        return current
    job = jobs.enqueue(
        session, REFRESH, {"project_id": project_id}, project_id=project_id, created_by=created_by
    )
    session.execute(
        text("UPDATE project_stats SET job_id = :j WHERE project_id = :p"),
        {"j": job.id, "p": project_id},
    )
    return job.id


def refresh_now(session: Session, principal: Principal, project_id: int) -> int:
    _researcher_project(session, principal, project_id)
    job_id = request_refresh(session, project_id, principal.id, force=True)
    assert job_id is not None  # forced: enqueued, or the unfinished one
    return job_id


def store_snapshot(
    session: Session, project_id: int, payload: dict[str, Any], duration_ms: int
) -> list[int]:
    """Keep the snapshot, write the review candidates, and pause the annotators the gold
    policy says to; returns those."""
    # Span and critique candidates come computed with the snapshot (never served by /stats).
    scored = payload.pop("review_candidates", None)
    session.execute(
        text(
            """
            INSERT INTO project_stats AS s
                (project_id, payload, computed_at, last_annotation_id, duration_ms)
            VALUES (:p, CAST(:payload AS jsonb), now(), :last, :ms)
            ON CONFLICT (project_id) DO UPDATE SET
                payload = EXCLUDED.payload, computed_at = EXCLUDED.computed_at,
                last_annotation_id = EXCLUDED.last_annotation_id,
                duration_ms = EXCLUDED.duration_ms
            """
        ),
        {
            "p": project_id,
            "payload": orjson.dumps(payload).decode(),
            "last": payload["last_annotation_id"],
            "ms": duration_ms,
        },
    )
    kind = session.execute(
        text("SELECT kind FROM projects WHERE id = :p"), {"p": project_id}
    ).scalar_one()
    session.execute(text("DELETE FROM review_candidates WHERE project_id = :p"), {"p": project_id})
    if kind in _ANSWER:
        session.execute(text(_CANDIDATES.format(answer=_ANSWER[kind])), {"p": project_id})
    elif scored:
        session.execute(
            text(
                # An item deleted since the snapshot was read is left out.
                "INSERT INTO review_candidates (item_id, project_id, votes, top_share, answers)"
                " SELECT :item_id, :p, :votes, :top_share, CAST(:answers AS jsonb)"
                " WHERE EXISTS (SELECT 1 FROM items WHERE id = :item_id AND project_id = :p)"
            ),
            [
                {**c, "p": project_id, "answers": orjson.dumps(c["answers"]).decode()}
                for c in scored
            ],
        )
    to_pause = [
        (a["user_id"], a["gold"]["reason"], a["gold"]["accuracy"])
        for a in payload["annotators"]
        if a.get("gold") and a["gold"]["status"] == "pause"
    ]
    paused: list[int] = []
    for uid, reason, accuracy in to_pause:
        done = session.execute(
            text(
                """
                INSERT INTO annotator_pauses (project_id, user_id, reason, accuracy)
                SELECT :p, :u, :reason, :acc
                WHERE EXISTS (SELECT 1 FROM project_members
                              WHERE project_id = :p AND user_id = :u)
                ON CONFLICT (project_id, user_id) WHERE lifted_at IS NULL DO NOTHING
                RETURNING user_id
                """
            ),
            {"p": project_id, "u": uid, "reason": reason, "acc": accuracy},
        ).one_or_none()
        if done is not None:
            paused.append(uid)
    return paused


@dataclass(frozen=True, slots=True)
class Cached:
    payload: dict[str, Any] | None
    computed_at: datetime | None
    duration_ms: int | None
    stale: bool
    refresh_job_id: int | None


def cached(
    session: Session, project_id: int, created_by: int | None, *, ask_refresh: bool = True
) -> Cached:
    """The stored snapshot; a refresh is asked for (debounced) when it is missing or stale,
    unless `ask_refresh` is False (an answer to a refused write changes nothing)."""
    row = session.execute(
        text(
            """
            SELECT s.payload::text, s.computed_at, s.duration_ms, s.last_annotation_id,
                   (SELECT max(id) FROM annotations WHERE project_id = :p) AS newest
            FROM (SELECT 1) one LEFT JOIN project_stats s ON s.project_id = :p
            """
        ),
        {"p": project_id},
    ).one()
    raw, computed_at, duration_ms, seen, newest = row
    stale = computed_at is None or (newest or 0) > (seen or 0)
    job_id = request_refresh(session, project_id, created_by) if stale and ask_refresh else None
    payload = orjson.loads(raw) if raw and computed_at is not None else None
    return Cached(payload, computed_at, duration_ms, stale, job_id)


def _snapshot_fields(c: Cached) -> dict[str, Any]:
    return {
        "snapshot_at": c.computed_at.isoformat() if c.computed_at else None,
        "snapshot_ms": c.duration_ms,
        "stale": c.stale,
        "refresh_job_id": c.refresh_job_id,
    }


def _live_counts(session: Session, project_id: int) -> dict[str, Any]:
    """Counts straight from the tables, for a project whose first snapshot is not ready."""
    items, complete, n_gold = session.execute(
        text(
            "SELECT count(*), count(*) FILTER (WHERE remaining = 0),"
            " count(*) FILTER (WHERE is_gold) FROM items WHERE project_id = :p"
        ),
        {"p": project_id},
    ).one()
    sources: dict[str, int] = dict(
        session.execute(
            text("SELECT source, count(*) FROM annotations WHERE project_id = :p GROUP BY 1"),
            {"p": project_id},
        ).all()
    )
    return {
        "items": items,
        "items_complete": complete,
        "gold_items": n_gold,
        "annotations": {"human": int(sources.get("human", 0)), "ai": int(sources.get("ai", 0))},
    }


def project_stats(session: Session, principal: Principal, project_id: int) -> dict[str, Any]:
    """GET /stats: the snapshot, its time, and whether a newer one is on its way."""
    project = _researcher_project(session, principal, project_id)
    c = cached(session, project_id, principal.id)
    head = {"project_id": project_id, "kind": project.kind, **_snapshot_fields(c)}
    if c.payload is None:
        counts = _live_counts(session, project_id)
        empty = counts["annotations"]["human"] + counts["annotations"]["ai"] == 0
        return {
            **head,
            "empty": empty,
            "explanation": (
                "No annotations yet: statistics appear once items are labelled."
                if empty
                else "The first statistics are being computed"
                + (f" (job {c.refresh_job_id})" if c.refresh_job_id else "")
                + "; the counts below are live."
            ),
            "counts": counts,
        }
    body = dict(c.payload)
    body.pop("project", None)
    return {**head, **body}


# --- leaderboard ------------------------------------------------------------------------------


def leaderboard(
    session: Session,
    principal: Principal,
    project_id: int,
    source: Source = "all",
    length_control: bool = False,
) -> dict[str, Any]:
    project = _researcher_project(session, principal, project_id)
    if project.kind not in ("pairwise", "ranking"):
        raise NoLeaderboard(
            f"Project {project_id} is a {project.kind} project: a leaderboard ranks models by"
            " pairwise or ranking votes."
        )
    has_model = session.execute(
        text(
            "SELECT EXISTS (SELECT 1 FROM responses r JOIN items i ON i.id = r.item_id"
            " WHERE i.project_id = :p AND r.model IS NOT NULL)"
        ),
        {"p": project_id},
    ).scalar_one()
    if not has_model:
        raise NoLeaderboard(
            f"No response in project {project_id} carries a `model`: import responses with"
            " `model` to rank models."
        )
    c = cached(session, project_id, principal.id)
    variant = "length_controlled" if length_control else "plain"
    head = {
        "project_id": project_id,
        "source": source,
        "length_control": length_control,
        **_snapshot_fields(c),
    }
    boards = (c.payload or {}).get("leaderboard") or {}
    board = boards.get(source)
    if board is None:
        why = (c.payload or {}).get("leaderboard_explanation") or (
            f"No {source} votes between two models yet." if c.payload else None
        )
        return {
            **head,
            "ratings": [],
            "battles": 0,
            "explanation": why or "The statistics are being computed; ask again shortly.",
        }
    if board.get(variant) is None:
        # A snapshot taken before every source had its length-controlled board.
        return {
            **head,
            "ratings": [],
            "battles": 0,
            "explanation": "This snapshot predates length control by source: refresh the"
            " statistics (POST .../stats/refresh) and ask again.",
        }
    return {**head, **board[variant], "explanation": None}


CSV_COLUMNS = ("rank", "model", "score", "low", "high", "battles", "wins")


def leaderboard_csv(board: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in board["ratings"]:
        writer.writerow(["" if r[c] is None else r[c] for c in CSV_COLUMNS])
    return out.getvalue()


# --- annotators: quality and pauses -----------------------------------------------------------


def _known_annotator(session: Session, project_id: int, user_id: int) -> None:
    known = session.execute(
        text(
            "SELECT EXISTS (SELECT 1 FROM project_members WHERE project_id = :p AND user_id = :u)"
            " OR EXISTS (SELECT 1 FROM annotations WHERE project_id = :p AND user_id = :u)"
        ),
        {"p": project_id, "u": user_id},
    ).scalar_one()
    if not known:
        raise NotFound(
            f"User {user_id} is not a member of project {project_id} and has no work in it."
        )


def active_pause(session: Session, project_id: int, user_id: int) -> dict[str, Any] | None:
    row = session.execute(
        text(
            "SELECT reason, accuracy, paused_at, paused_by FROM annotator_pauses"
            " WHERE project_id = :p AND user_id = :u AND lifted_at IS NULL"
        ),
        {"p": project_id, "u": user_id},
    ).one_or_none()
    if row is None:
        return None
    return {
        "reason": row.reason,
        "accuracy": row.accuracy,
        "paused_at": row.paused_at.isoformat(),
        "automatic": row.paused_by is None,
    }


def check_not_paused(session: Session, project_id: int, user_id: int) -> None:
    pause = active_pause(session, project_id, user_id)
    if pause is not None:
        raise AnnotatorPaused(
            f"Your work in this project is paused: {pause['reason']} A researcher of the"
            " project can lift the pause."
        )


def annotator_quality(
    session: Session, principal: Principal, project_id: int, user_id: int
) -> dict[str, Any]:
    _researcher_project(session, principal, project_id)
    _known_annotator(session, project_id, user_id)
    c = cached(session, project_id, principal.id)
    rows = (c.payload or {}).get("annotators") or []
    mine = next((a for a in rows if a["user_id"] == user_id), None)
    out = {
        "project_id": project_id,
        "user_id": user_id,
        **_snapshot_fields(c),
        "pause": active_pause(session, project_id, user_id),
    }
    if mine is None:
        why = (
            "The statistics are being computed; ask again shortly."
            if c.payload is None
            else "This annotator has no annotations in the snapshot."
        )
        return {**out, "annotations": 0, "explanation": why}
    return {**out, **{k: v for k, v in mine.items() if k != "user_id"}, "explanation": None}


def list_pauses(session: Session, principal: Principal, project_id: int) -> list[dict[str, Any]]:
    _researcher_project(session, principal, project_id)
    rows = session.execute(
        text(
            "SELECT p.user_id, u.email, p.reason, p.accuracy, p.paused_at, p.paused_by"
            " FROM annotator_pauses p JOIN users u ON u.id = p.user_id"
            " WHERE p.project_id = :p AND p.lifted_at IS NULL ORDER BY p.paused_at, p.user_id"
        ),
        {"p": project_id},
    ).all()
    return [
        {
            "user_id": r.user_id,
            "email": r.email,
            "reason": r.reason,
            "accuracy": r.accuracy,
            "paused_at": r.paused_at.isoformat(),
            "automatic": r.paused_by is None,
        }
        for r in rows
    ]


def pause(
    session: Session, principal: Principal, project_id: int, user_id: int, reason: str
) -> dict[str, Any]:
    """Pause by hand (idempotent: a pause in force is kept as it is)."""
    _researcher_project(session, principal, project_id)
    _known_annotator(session, project_id, user_id)
    session.execute(
        text(
            """
            INSERT INTO annotator_pauses (project_id, user_id, reason, paused_by)
            VALUES (:p, :u, :reason, :by)
            ON CONFLICT (project_id, user_id) WHERE lifted_at IS NULL DO NOTHING
            """
        ),
        {
            "p": project_id,
            "u": user_id,
            "reason": reason or "Paused by a researcher.",
            "by": principal.id,
        },
    )
    found = active_pause(session, project_id, user_id)
    assert found is not None
    return {"user_id": user_id, **found}


def lift(session: Session, principal: Principal, project_id: int, user_id: int) -> bool:
    """Lift the pause in force, if any (idempotent). Gold answers before now no longer count
    toward an automatic pause."""
    _researcher_project(session, principal, project_id)
    _known_annotator(session, project_id, user_id)
    done = session.execute(
        text(
            "UPDATE annotator_pauses SET lifted_at = now(), lifted_by = :by"
            " WHERE project_id = :p AND user_id = :u AND lifted_at IS NULL RETURNING id"
        ),
        {"p": project_id, "u": user_id, "by": principal.id},
    ).one_or_none()
    return done is not None


# --- review queue and adjudication ------------------------------------------------------------

# Per item with two or more human votes that do not all agree: the top answer's share
# (pairwise: the preferred response or a tie; ranking: the response ranked first). Written
# by the stats job beside its snapshot; the queue reads it through an index.
_CANDIDATES = """
    WITH votes AS (
        SELECT a.item_id, {answer} AS answer, count(*) AS n
        FROM annotations a
        WHERE a.project_id = :p AND a.source = 'human'
        GROUP BY 1, 2
    )
    INSERT INTO review_candidates (item_id, project_id, votes, top_share, answers)
    SELECT item_id, :p, sum(n)::int, max(n)::float8 / sum(n),
           jsonb_object_agg(coalesce(answer, 'tie'), n)
    FROM votes GROUP BY item_id
    HAVING sum(n) >= 2 AND max(n) < sum(n)
"""
_QUEUE = """
    SELECT q.item_id, q.votes, q.top_share, q.answers, i.external_id, i.prompt
    FROM review_candidates q JOIN items i ON i.id = q.item_id
    WHERE q.project_id = :p AND q.top_share < :below
      AND NOT EXISTS (SELECT 1 FROM adjudications d WHERE d.item_id = q.item_id)
    ORDER BY q.top_share, q.item_id
    LIMIT :limit
"""
_ANSWER = {"pairwise": "a.payload->>'preferred'", "ranking": "a.payload->'order'->>0"}
# Span and critique items are scored by the stats job (app/quality/review.py).
ADJUDICABLE = ("pairwise", "ranking", "span", "critique")
# The label fields of each kind; a field of another kind in a decision is refused.
_FIELDS = {
    "pairwise": ("preferred", "tie"),
    "ranking": ("order",),
    "span": ("spans", "overall", "from_annotation"),
    "critique": ("critique", "rewrite", "rating", "from_annotation"),
}


@dataclass(frozen=True, slots=True)
class Decision:
    """A reviewer's final label, as sent: pairwise `preferred` or `tie`; ranking `order`;
    span `spans` (+ `overall`) and critique `critique`, `rewrite`, `rating`, each optionally
    starting from one annotation of the item (`from_annotation`: its label, with the fields
    given here replacing its own)."""

    preferred: int | None = None
    tie: bool = False
    order: list[int] | None = None
    spans: list[dict[str, Any]] | None = None
    overall: int | None = None
    critique: str | None = None
    rewrite: str | None = None
    rating: int | None = None
    from_annotation: int | None = None

    def given(self) -> list[str]:
        """The fields sent (a false `tie` is not sent; an empty `spans` list is)."""
        return [f for f in _ALL_FIELDS if getattr(self, f) is not None and getattr(self, f) != 0]


_ALL_FIELDS = tuple(dict.fromkeys(f for fields in _FIELDS.values() for f in fields))


def _adjudicable(project: Project) -> str:
    if project.kind not in ADJUDICABLE:
        raise Invalid(f"Project {project.id} is a {project.kind} project: nothing to adjudicate.")
    return str(project.kind)


def _human_annotations(session: Session, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The human annotations of span and critique items, for the reviewer to compare."""
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    rows = session.execute(
        text(
            "SELECT id, item_id, user_id, payload FROM annotations"
            " WHERE item_id = ANY(:ids) AND source = 'human' ORDER BY item_id, id"
        ),
        {"ids": ids},
    )
    for r in rows:
        label = {k: v for k, v in r.payload.items() if k != "response_id"}
        out[r.item_id].append({"annotation_id": r.id, "annotator_id": r.user_id, **label})
    return out


def review_queue(
    session: Session,
    principal: Principal,
    project_id: int,
    limit: int = 50,
    below: float | None = None,
    *,
    ask_refresh: bool = True,
) -> dict[str, Any]:
    project = _researcher_project(session, principal, project_id)
    kind = _adjudicable(project)
    threshold = settings_of(session, project_id).review_below if below is None else below
    c = cached(session, project_id, principal.id, ask_refresh=ask_refresh)
    rows = session.execute(
        text(_QUEUE), {"p": project_id, "below": threshold, "limit": limit}
    ).all()
    ids = [r.item_id for r in rows]
    responses: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for r in session.execute(
        text(
            "SELECT id, item_id, text, model FROM responses WHERE item_id = ANY(:ids)"
            " ORDER BY item_id, position"
        ),
        {"ids": ids},
    ):
        responses[r.item_id].append({"id": r.id, "text": r.text, "model": r.model})
    labelled = _human_annotations(session, ids) if kind in ("span", "critique") else {}
    decided = session.execute(
        text("SELECT count(*) FROM adjudications WHERE project_id = :p"), {"p": project_id}
    ).scalar_one()
    return {
        "project_id": project_id,
        "kind": kind,
        **({"span_labels": list(project.span_labels)} if kind == "span" else {}),
        **_snapshot_fields(c),
        "below": threshold,
        "adjudicated": decided,
        "items": [
            {
                "item_id": r.item_id,
                "external_id": r.external_id,
                "prompt": r.prompt,
                "votes": r.votes,
                # Pairwise and ranking: the top answer's share of the votes; span and
                # critique: the agreement of the human annotations (see README).
                "top_share": r.top_share,
                # Pairwise: response id (or "tie") -> votes; ranking: response ranked first ->
                # votes; span: annotation id -> spans marked; critique: annotation id -> rating.
                "answers": r.answers,
                "responses": responses[r.item_id],
                **({"annotations": labelled[r.item_id]} if labelled else {}),
            }
            for r in rows
        ],
    }


def _item_responses(session: Session, project_id: int, item_id: int) -> list[tuple[int, str]]:
    rows = session.execute(
        text(
            "SELECT r.id, r.text FROM responses r JOIN items i ON i.id = r.item_id"
            " WHERE i.id = :i AND i.project_id = :p ORDER BY r.position"
        ),
        {"i": item_id, "p": project_id},
    ).all()
    if not rows:
        raise NotFound(f"Item {item_id} does not exist in project {project_id}.")
    return [(r.id, r.text) for r in rows]


def _base_label(session: Session, item_id: int, annotation_id: int | None) -> dict[str, Any]:
    """The stored label of one annotation of the item (the reviewer's starting point)."""
    if annotation_id is None:
        return {}
    payload = session.execute(
        text("SELECT payload FROM annotations WHERE id = :a AND item_id = :i"),
        {"a": annotation_id, "i": item_id},
    ).scalar_one_or_none()
    if payload is None:
        raise Invalid(f"from_annotation: {annotation_id} is not an annotation of item {item_id}.")
    return dict(payload)


def _span_label(
    session: Session, project: Project, item_id: int, d: Decision, length: int
) -> dict[str, Any]:
    base = _base_label(session, item_id, d.from_annotation)
    if d.spans is None and not base:
        raise Invalid(
            "A span item is decided by `spans` (its final spans, [] for none) or"
            " `from_annotation` (an annotation of the item whose spans to keep)."
        )
    spans = d.spans if d.spans is not None else base.get("spans", [])
    checked = []
    for n, span in enumerate(spans):
        start, end, label = span["start"], span["end"], span["label"]
        if not 0 <= start < end <= length:
            raise Invalid(
                f"spans.{n}: need 0 <= start < end <= {length} (code points in the response),"
                f" got start={start} end={end}."
            )
        if label not in project.span_labels:
            raise Invalid(
                f"spans.{n}.label {label!r} is not one of this project's labels:"
                f" {', '.join(project.span_labels)}."
            )
        keep = {"start": start, "end": end, "label": label}
        if span.get("comment"):
            keep["comment"] = span["comment"]
        checked.append(keep)
    checked.sort(key=lambda x: (x["start"], x["end"], x["label"]))
    overall = d.overall if d.overall is not None else base.get("overall")
    label_out = {"spans": checked, "overall": overall}
    return _with_provenance(label_out, base, d.from_annotation)


def _critique_label(session: Session, item_id: int, d: Decision) -> dict[str, Any]:
    base = _base_label(session, item_id, d.from_annotation)
    if d.critique is None and not base:
        raise Invalid(
            "A critique item is decided by `critique` (the final critique, with `rewrite` and"
            " `rating` if wanted) or `from_annotation` (an annotation of the item to keep)."
        )
    label_out = {
        "critique": d.critique if d.critique is not None else base.get("critique"),
        "rewrite": d.rewrite if d.rewrite is not None else base.get("rewrite"),
        "rating": d.rating if d.rating is not None else base.get("rating"),
    }
    if not label_out["critique"]:
        raise Invalid("critique: the final critique is empty.")
    return _with_provenance(label_out, base, d.from_annotation)


def _with_provenance(
    label_out: dict[str, Any], base: dict[str, Any], from_annotation: int | None
) -> dict[str, Any]:
    # `edited`: whether the final label differs from the annotation it started from.
    edited = None if not base else any(base.get(k) != v for k, v in label_out.items())
    return {**label_out, "from_annotation": from_annotation, "edited": edited}


def adjudicate(
    session: Session,
    principal: Principal,
    project_id: int,
    item_id: int,
    decision: Decision,
    note: str = "",
) -> dict[str, Any]:
    """Record (or replace) the final label of an item; it wins aggregation in exports."""
    project = _researcher_project(session, principal, project_id)
    kind = _adjudicable(project)
    responses = _item_responses(session, project_id, item_id)
    ids = [rid for rid, _ in responses]
    stray = [f for f in decision.given() if f not in _FIELDS[kind]]
    if stray:
        raise Invalid(
            f"{', '.join(stray)}: not a field of a {kind} decision (give"
            f" {', '.join(_FIELDS[kind])})."
        )
    d = decision
    payload: dict[str, Any]
    if kind == "pairwise":
        if d.tie == (d.preferred is not None):
            raise Invalid("Give either `preferred` (a response id of the item) or `tie: true`.")
        if d.tie and not project.allow_tie:
            raise Invalid("tie: this project does not allow ties.")
        if d.preferred is not None and d.preferred not in ids:
            raise Invalid(f"preferred: {d.preferred} is not a response of item {item_id} ({ids}).")
        payload = {"preferred": d.preferred, "tie": d.tie}
    elif kind == "ranking":
        order = d.order
        if order is None:
            raise Invalid("A ranking item is decided by `order` (its response ids, best first).")
        if sorted(order) != sorted(ids) or len(set(order)) != len(order):
            raise Invalid(f"order must list each response id of item {item_id} once: {ids}.")
        payload = {"order": order}
    elif kind == "span":
        payload = _span_label(session, project, item_id, d, len(responses[0][1]))
    else:
        payload = _critique_label(session, item_id, d)
    session.execute(
        text(
            """
            INSERT INTO adjudications (item_id, project_id, payload, note, decided_by)
            VALUES (:i, :p, CAST(:payload AS jsonb), :note, :by)
            ON CONFLICT (item_id) DO UPDATE SET payload = EXCLUDED.payload,
                note = EXCLUDED.note, decided_by = EXCLUDED.decided_by, decided_at = now()
            """
        ),
        {
            "i": item_id,
            "p": project_id,
            "payload": orjson.dumps(payload).decode(),
            "note": note,
            "by": principal.id,
        },
    )
    found = session.get(Adjudication, item_id)
    assert found is not None
    session.refresh(found)
    return adjudication_out(found)


def adjudication_out(a: Adjudication) -> dict[str, Any]:
    return {
        "item_id": a.item_id,
        "payload": a.payload,
        "note": a.note,
        "decided_by": a.decided_by,
        "decided_at": a.decided_at.isoformat(),
    }


def remove_adjudication(
    session: Session, principal: Principal, project_id: int, item_id: int
) -> None:
    _researcher_project(session, principal, project_id)
    session.execute(
        text("DELETE FROM adjudications WHERE item_id = :i AND project_id = :p"),
        {"i": item_id, "p": project_id},
    )
