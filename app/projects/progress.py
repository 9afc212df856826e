"""Progress counts: per project for the caller (done, still available) and per annotator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.projects.service import get_project


@dataclass(frozen=True, slots=True)
class ProjectProgress:
    project_id: int
    items: int
    # Items with as many counted human annotations as the project's overlap asks for.
    items_complete: int
    human_annotations: int
    # Counted human votes (at most overlap per item) against items x overlap: moves with every
    # vote, where items_complete waits for an item's last one.
    votes_collected: int
    votes_needed: int
    live_leases: int
    # The caller's own work: submitted and skipped tasks, and how many items they could still
    # be served now (their open lease included); others' leases may lower it as they work.
    my_done: int
    my_skipped: int
    my_remaining: int

    @property
    def percent_complete(self) -> int:
        return round(100 * self.items_complete / self.items) if self.items else 0

    @property
    def percent_votes(self) -> int:
        if not self.votes_needed:
            return 0
        # Never 100 before the last vote is in.
        share = 100 * self.votes_collected / self.votes_needed
        return 99 if 99 < share < 100 else round(share)


_PROGRESS = text(
    """
    SELECT p.id,
      (SELECT count(*) FROM items i WHERE i.project_id = p.id) AS items,
      (SELECT count(*) FROM (
          SELECT a.item_id FROM annotations a
          WHERE a.project_id = p.id AND a.source = 'human' AND NOT a.over_quota
          GROUP BY a.item_id HAVING count(*) >= p.overlap) c) AS items_complete,
      (SELECT count(*) FROM annotations a
          WHERE a.project_id = p.id AND a.source = 'human') AS human_annotations,
      (SELECT coalesce(sum(least(c.n, p.overlap)), 0) FROM (
          SELECT count(*) AS n FROM annotations a
          WHERE a.project_id = p.id AND a.source = 'human' AND NOT a.over_quota
          GROUP BY a.item_id) c) AS votes_collected,
      (SELECT count(*) FROM items i WHERE i.project_id = p.id) * p.overlap AS votes_needed,
      (SELECT count(*) FROM assignments s
          WHERE s.project_id = p.id AND s.status = 'leased' AND s.expires_at > now())
          AS live_leases,
      (SELECT count(*) FROM assignments s
          WHERE s.project_id = p.id AND s.user_id = :uid AND s.status = 'submitted') AS my_done,
      (SELECT count(*) FROM assignments s
          WHERE s.project_id = p.id AND s.user_id = :uid AND s.status = 'skipped') AS my_skipped,
      (SELECT count(*) FROM items i
          WHERE i.project_id = p.id AND i.remaining > 0
            AND NOT EXISTS (SELECT 1 FROM assignments s
                            WHERE s.item_id = i.id AND s.user_id = :uid AND s.status <> 'expired'))
      + (SELECT count(*) FROM assignments s
          WHERE s.project_id = p.id AND s.user_id = :uid AND s.status = 'leased') AS my_remaining
    FROM projects p
    WHERE p.id = ANY(:ids)
    """
)


def progress_of(
    session: Session, principal: Principal, project_ids: Sequence[int]
) -> dict[int, ProjectProgress]:
    """Progress of projects the caller already may see (callers check visibility first)."""
    if not project_ids:
        return {}
    rows = session.execute(_PROGRESS, {"ids": list(project_ids), "uid": principal.id}).mappings()
    return {r["id"]: ProjectProgress(project_id=r["id"], **{k: int(r[k]) for k in r if k != "id"})
            for r in rows}  # fmt: skip


def project_progress(session: Session, principal: Principal, project_id: int) -> ProjectProgress:
    project = get_project(session, principal, project_id)
    return progress_of(session, principal, [project.id])[project.id]


@dataclass(frozen=True, slots=True)
class AnnotatorProgress:
    user_id: int
    email: str
    submitted: int
    skipped: int
    live: int
    median_time_ms: int | None
    mean_gold_score: float | None


_BY_ANNOTATOR = text(
    """
    SELECT u.id AS user_id, u.email,
      count(*) FILTER (WHERE s.status = 'submitted') AS submitted,
      count(*) FILTER (WHERE s.status = 'skipped') AS skipped,
      count(*) FILTER (WHERE s.status = 'leased' AND s.expires_at > now()) AS live,
      percentile_disc(0.5) WITHIN GROUP (ORDER BY an.time_spent_ms) AS median_time_ms,
      avg(an.gold_score) AS mean_gold_score
    FROM assignments s
    JOIN users u ON u.id = s.user_id
    LEFT JOIN annotations an ON an.assignment_id = s.id
    WHERE s.project_id = :pid
    GROUP BY u.id, u.email
    ORDER BY submitted DESC, u.id
    """
)


def annotator_progress(
    session: Session, principal: Principal, project_id: int
) -> list[AnnotatorProgress]:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    rows = session.execute(_BY_ANNOTATOR, {"pid": project.id}).mappings()
    return [AnnotatorProgress(**r) for r in rows]
