"""Jobs: created in the caller's transaction, handed to Celery after commit, claimed atomically.

Delivery is at-least-once. The Celery message carries only the job id; the task claims the row
(`claim`), does its work in one transaction that also marks the job succeeded (`finish`), so a
redelivered message finds nothing left to do, and a crash leaves the row claimable again once
its lock runs out (the sweeper re-sends it).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, event, or_, select, text, update
from sqlalchemy.orm import Session

from app.auth.service import Principal
from app.errors import NotFound
from app.jobs.models import Job, JobBlob, JobStatus
from app.projects.models import Project
from app.projects.service import visible_to

log = logging.getLogger(__name__)
LOCK_SECONDS = 300
BLOB_CHUNK = 1024 * 1024
_PENDING = "tandem_pending_jobs"


class LostClaim(Exception):
    """The job was claimed again after this run's lock ran out: this run's work must not count."""


def enqueue(
    session: Session,
    kind: str,
    params: dict[str, Any],
    *,
    project_id: int | None = None,
    created_by: int | None = None,
    queue: str = "default",
) -> Job:
    """Create a job row; its message is sent once (and only if) this transaction commits."""
    job = Job(kind=kind, params=params, project_id=project_id, created_by=created_by, queue=queue)
    session.add(job)
    session.flush()
    session.info.setdefault(_PENDING, []).append((job.id, queue))
    return job


def add_blob(session: Session, job_id: int, chunks: Any) -> int:
    """Store input bytes for a job in Postgres, 1 MiB a row. Returns the total size."""
    total, seq, buf = 0, 0, bytearray()
    for chunk in chunks:
        buf += chunk
        while len(buf) >= BLOB_CHUNK:
            session.add(JobBlob(job_id=job_id, seq=seq, data=bytes(buf[:BLOB_CHUNK])))
            del buf[:BLOB_CHUNK]
            seq += 1
            session.flush()
        total += len(chunk)
    if buf or seq == 0:
        session.add(JobBlob(job_id=job_id, seq=seq, data=bytes(buf)))
    session.flush()
    return total


def read_blob(session: Session, job_id: int) -> Any:
    """Yield a job's input bytes in order without loading them all."""
    seq = 0
    while True:
        data = session.execute(
            select(JobBlob.data).where(JobBlob.job_id == job_id, JobBlob.seq == seq)
        ).scalar_one_or_none()
        if data is None:
            return
        yield data
        seq += 1


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        for job_id, queue in pending:
            send(job_id, queue)


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def send(job_id: int, queue: str) -> None:
    """Hand a job id to Celery; if the broker is down the sweeper will send it later."""
    try:
        from worker.celery_app import celery_app

        celery_app.send_task("tandem.run_job", args=[job_id], queue=queue)
    except Exception:
        log.exception("could not send job %s to the broker; the sweeper will retry", job_id)


def claim(session: Session, job_id: int) -> Job | None:
    """Take a queued job, or a running one whose worker stopped renewing its lock."""
    now = datetime.now(UTC)
    claimed = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            or_(
                Job.status == JobStatus.queued.value,
                (Job.status == JobStatus.running.value) & (Job.locked_until < now),
            ),
        )
        .values(
            status=JobStatus.running.value,
            attempts=Job.attempts + 1,
            started_at=now,
            locked_until=now + timedelta(seconds=LOCK_SECONDS),
        )
        .returning(Job.id)
    ).scalar_one_or_none()
    return None if claimed is None else session.get_one(Job, job_id)


def _current(job_id: int, attempt: int) -> ColumnElement[bool]:
    """The job is still running under claim number `attempt` (the claim's fencing token)."""
    return (Job.id == job_id) & (Job.status == JobStatus.running.value) & (Job.attempts == attempt)


def report_progress(session: Session, job_id: int, attempt: int, progress: float) -> None:
    """Progress and lock renewal, committed by the caller in a session of its own."""
    session.execute(
        update(Job)
        .where(_current(job_id, attempt))
        .values(
            progress=max(0.0, min(1.0, progress)),
            locked_until=datetime.now(UTC) + timedelta(seconds=LOCK_SECONDS),
        )
    )


def finish(session: Session, job_id: int, attempt: int, result: dict[str, Any]) -> None:
    """Mark the job succeeded in the transaction that holds its effect.

    Raises LostClaim (the caller rolls back) if the job was claimed again meanwhile: its lock
    ran out while this run waited, and the newer run's work is the one that counts.
    """
    done = session.execute(
        update(Job)
        .where(_current(job_id, attempt))
        .values(
            status=JobStatus.succeeded.value,
            result=result,
            progress=1.0,
            finished_at=datetime.now(UTC),
            locked_until=None,
            error=None,
        )
        .returning(Job.id)
    ).scalar_one_or_none()
    if done is None:
        raise LostClaim(f"job {job_id} was claimed again after attempt {attempt}")
    session.execute(text("DELETE FROM job_blobs WHERE job_id = :id"), {"id": job_id})


def fail(session: Session, job_id: int, attempt: int, error: str) -> None:
    session.execute(
        update(Job)
        .where(_current(job_id, attempt))
        .values(
            status=JobStatus.failed.value,
            error=error,
            finished_at=datetime.now(UTC),
            locked_until=None,
        )
    )


def stale_jobs(session: Session, queued_for_seconds: int = 60) -> list[tuple[int, str]]:
    """Jobs whose message may have been lost: long queued, or running with a lapsed lock."""
    now = datetime.now(UTC)
    rows = session.execute(
        select(Job.id, Job.queue).where(
            or_(
                (Job.status == JobStatus.queued.value)
                & (Job.created_at < now - timedelta(seconds=queued_for_seconds)),
                (Job.status == JobStatus.running.value) & (Job.locked_until < now),
            )
        )
    )
    return [(r[0], r[1]) for r in rows]


def get_job(session: Session, principal: Principal, job_id: int) -> Job:
    """A job the caller started, or one of a project they belong to (admins see all)."""
    stmt = select(Job).where(Job.id == job_id)
    if not principal.is_admin:
        member_project = select(Project.id).where(
            Project.id == Job.project_id, visible_to(principal)
        )
        stmt = stmt.where(or_(Job.created_by == principal.id, member_project.exists()))
    job = session.scalars(stmt).one_or_none()
    if job is None:
        raise NotFound(f"Job {job_id} does not exist or is not yours to see.")
    return job
