"""A job's life as state changes of its row: claim, renew, checkpoint, finish, fail, retry, settle.

Every change made on behalf of a running attempt is fenced by its claim number: it applies only
while the row is still `running` with `attempts` equal to that number, so an attempt whose claim
ran out (and was taken over) can never commit. Times come from the database clock, so workers'
clocks need not agree. Callers own the transaction (each function takes a Session).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.orm import Session

from app.config import get_settings
from app.jobs.context import JobCancelled, LostClaim
from app.jobs.models import Job, JobStatus
from app.jobs.outbox import Message, send_after_commit

# A queued job whose message is this overdue is presumed lost and sent again.
LOST_MESSAGE_SECONDS = 60


def lease() -> timedelta:
    return timedelta(seconds=get_settings().job_lease_seconds)


def _current(job_id: int, attempt: int) -> ColumnElement[bool]:
    """The job is still running under claim number `attempt` (the claim's fencing token)."""
    return (Job.id == job_id) & (Job.status == JobStatus.running.value) & (Job.attempts == attempt)


def _lapsed() -> ColumnElement[bool]:
    return (Job.status == JobStatus.running.value) & (Job.locked_until < func.now())


def claim(session: Session, job_id: int) -> Job | None:
    """Take a queued job for a new attempt. A running job whose claim lapsed is settled first
    (requeued, or failed/cancelled), so a redelivered message can pick it up."""
    settle_lapsed(session, job_id)
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.queued.value)
        .values(
            status=JobStatus.running.value,
            attempts=Job.attempts + 1,
            started_at=func.now(),
            heartbeat_at=func.now(),
            locked_until=func.now() + lease(),
        )
        .returning(Job.id)
    ).scalar_one_or_none()
    if claimed is None:
        return None
    return session.scalars(
        select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
    ).one()


@dataclass(frozen=True, slots=True)
class Renewal:
    cancel_requested: bool


def renew(
    session: Session,
    job_id: int,
    attempt: int,
    *,
    progress: float | None = None,
    detail: dict[str, Any] | None = None,
    extend: bool = True,
) -> Renewal:
    """Heartbeat (and progress): push the claim a lease ahead. Raises LostClaim if not current."""
    values: dict[str, Any] = {"heartbeat_at": func.now()}
    if extend:
        values["locked_until"] = func.now() + lease()
    if progress is not None:
        values["progress"] = max(0.0, min(1.0, progress))
    if detail is not None:
        values["progress_detail"] = detail
    row = session.execute(
        update(Job)
        .where(_current(job_id, attempt))
        .values(**values)
        .returning(Job.cancel_requested_at.is_not(None))
    ).one_or_none()
    if row is None:
        raise LostClaim(f"job {job_id} is no longer held by attempt {attempt}")
    return Renewal(cancel_requested=bool(row[0]))


def lock_current(session: Session, job_id: int, attempt: int) -> None:
    """Lock the job row for this transaction if the attempt still holds it (a concurrent
    re-claim waits until commit). Raises LostClaim, or JobCancelled once cancel was asked."""
    row = session.execute(
        select(Job.cancel_requested_at)
        .where(_current(job_id, attempt))
        .with_for_update(key_share=True)
    ).one_or_none()
    if row is None:
        raise LostClaim(f"job {job_id} is no longer held by attempt {attempt}")
    if row[0] is not None:
        raise JobCancelled(f"job {job_id} was cancelled")


def save_checkpoint(session: Session, job_id: int, attempt: int, state: dict[str, Any]) -> None:
    done = session.execute(
        update(Job).where(_current(job_id, attempt)).values(checkpoint=state).returning(Job.id)
    ).scalar_one_or_none()
    if done is None:
        raise LostClaim(f"job {job_id} is no longer held by attempt {attempt}")


def cancel_requested(session: Session, job_id: int) -> bool:
    at = session.execute(select(Job.cancel_requested_at).where(Job.id == job_id)).one_or_none()
    return at is not None and at[0] is not None


def finish(session: Session, job_id: int, attempt: int, result: dict[str, Any]) -> None:
    """Mark the job succeeded in the transaction that holds its effect.

    Raises (the caller rolls back) LostClaim if the job was claimed again meanwhile (the newer
    attempt's work is the one that counts), JobCancelled if cancel was asked before the commit.
    """
    done = session.execute(
        update(Job)
        .where(_current(job_id, attempt), Job.cancel_requested_at.is_(None))
        .values(
            status=JobStatus.succeeded.value,
            result=result,
            progress=1.0,
            finished_at=func.now(),
            locked_until=None,
            error=None,
        )
        .returning(Job.id)
    ).scalar_one_or_none()
    if done is None:
        lock_current(session, job_id, attempt)  # raises the reason
        raise LostClaim(f"job {job_id} could not be finished by attempt {attempt}")
    session.execute(text("DELETE FROM job_blobs WHERE job_id = :id"), {"id": job_id})


def _end(session: Session, job_id: int, attempt: int, status: JobStatus, error: str | None) -> bool:
    ended = session.execute(
        update(Job)
        .where(_current(job_id, attempt))
        .values(status=status.value, error=error, finished_at=func.now(), locked_until=None)
        .returning(Job.id)
    ).scalar_one_or_none()
    return ended is not None


def fail(session: Session, job_id: int, attempt: int, error: str) -> bool:
    return _end(session, job_id, attempt, JobStatus.failed, error)


def mark_cancelled(session: Session, job_id: int, attempt: int) -> bool:
    return _end(session, job_id, attempt, JobStatus.cancelled, None)


def retry_later(
    session: Session, job_id: int, attempt: int, error: str, delay_seconds: float
) -> bool:
    """Put the job back in its queue, due after the backoff; its message goes after commit."""
    row = session.execute(
        update(Job)
        .where(_current(job_id, attempt), Job.cancel_requested_at.is_(None))
        .values(
            status=JobStatus.queued.value,
            error=error,
            locked_until=None,
            due_at=func.now() + timedelta(seconds=delay_seconds),
        )
        .returning(Job.queue, Job.time_limit_s)
    ).one_or_none()
    if row is None:
        return False
    send_after_commit(session, Message(job_id, row[0], row[1], countdown=delay_seconds))
    return True


@dataclass(frozen=True, slots=True)
class Settled:
    job_id: int
    status: JobStatus  # queued again, failed or cancelled
    error: str | None


def duration(seconds: float) -> str:
    """'2 h', '10 min', '45 s'."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def settle_lapsed(session: Session, job_id: int | None = None) -> list[Settled]:
    """Running jobs whose claim lapsed (their worker stopped heartbeating): each lapse counts as
    an attempt. Requeued (and sent after commit) while attempts remain; else failed with the
    reason; cancelled if cancel was asked; failed if the attempt ran past its time limit."""
    stmt = select(Job).where(_lapsed()).with_for_update(skip_locked=True)
    if job_id is not None:
        stmt = stmt.where(Job.id == job_id)
    jobs = list(session.scalars(stmt.execution_options(populate_existing=True)))
    if not jobs:
        return []
    now = session.execute(select(func.now())).scalar_one()
    settled = []
    for job in jobs:
        at = f"{job.progress:.0%}"
        lost = job.lost_attempts + 1
        if job.cancel_requested_at is not None:
            status, error = JobStatus.cancelled, None
        elif job.started_at is not None and now > job.started_at + timedelta(
            seconds=job.time_limit_s
        ):
            status = JobStatus.failed
            error = (
                f"attempt {job.attempts} ran past the time limit of {duration(job.time_limit_s)}"
                f" (stopped at {at})"
            )
        elif job.attempts >= job.max_attempts:
            status = JobStatus.failed
            if lost == job.attempts:
                error = f"the worker stopped {_times(lost)}; last at {at}"
            else:
                error = (
                    f"gave up after {job.attempts} attempts; the worker of the last one stopped"
                    f" at {at}"
                )
        else:
            status = JobStatus.queued
            error = f"attempt {job.attempts}: the worker stopped at {at}; retrying"
        job.lost_attempts = lost
        job.status = status.value
        job.error = error
        job.locked_until = None
        if status is JobStatus.queued:
            job.due_at = now
            if job_id is None:  # a claim of this very job follows: no message needed
                send_after_commit(session, Message(job.id, job.queue, job.time_limit_s))
        else:
            job.finished_at = now
        settled.append(Settled(job.id, status, error))
    session.flush()
    return settled


def overdue_queued(session: Session, limit: int = 1000) -> list[Message]:
    """Queued jobs whose message should have been taken long ago (oldest first, at most
    `limit`): their message may be lost."""
    rows = session.execute(
        select(Job.id, Job.queue, Job.time_limit_s)
        .where(
            Job.status == JobStatus.queued.value,
            Job.due_at < func.now() - timedelta(seconds=LOST_MESSAGE_SECONDS),
        )
        .order_by(Job.due_at)
        .limit(limit)
    )
    return [Message(r[0], r[1], r[2]) for r in rows]
