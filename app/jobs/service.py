"""Jobs as their owners see them: enqueue in the caller's transaction, input blobs, and the
read/list/cancel rules with one visibility rule for every kind.

Delivery is at-least-once. The row is the source of truth; the Celery message carries only its
id and is sent after commit (`outbox`). Workers claim the row (`claims`), so a redelivered
message finds nothing left to do. Who sees a job: its creator, admins, and members of its project
whose role is at least the kind's `visible_to`; anyone else gets a 404 as if it did not exist.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, true, update
from sqlalchemy.orm import Session

from app.audit.service import record
from app.auth.service import Principal
from app.errors import Conflict, Forbidden, NotFound
from app.jobs import registry
from app.jobs.models import Job, JobBlob, JobStatus
from app.jobs.outbox import Message, send_after_commit
from app.jobs.specs import JobSpec
from app.pagination import Keyset
from app.projects.models import ProjectMember

log = logging.getLogger(__name__)
BLOB_CHUNK = 1024 * 1024


def enqueue(
    session: Session,
    spec: JobSpec,
    params: dict[str, Any],
    *,
    project_id: int | None = None,
    created_by: int | None = None,
) -> Job:
    """Create a job of this kind; its queue follows from the spec, and its message is sent once
    (and only if) this transaction commits."""
    queue = spec.queue_for(params)
    time_limit_s = int(spec.time_limit.total_seconds())
    job = Job(
        kind=spec.kind,
        params=params,
        project_id=project_id,
        created_by=created_by,
        queue=queue,
        max_attempts=spec.max_attempts,
        time_limit_s=time_limit_s,
    )
    session.add(job)
    session.flush()
    send_after_commit(session, Message(job.id, queue, time_limit_s))
    return job


def add_blob(session: Session, job_id: int, chunks: Iterable[bytes]) -> int:
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


def read_blob(session: Session, job_id: int) -> Iterator[bytes]:
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


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """The SQL condition "the caller may see this job" (the one rule for every kind)."""
    if principal.is_admin:
        return true()
    member = exists().where(
        ProjectMember.project_id == Job.project_id, ProjectMember.user_id == principal.id
    )
    kinds = registry.kinds_visible_to(principal.role)
    return or_(Job.created_by == principal.id, and_(Job.kind.in_(kinds), member))


def _not_found(job_id: int) -> NotFound:
    return NotFound(f"Job {job_id} does not exist or is not yours to see.")


def get_job(session: Session, principal: Principal, job_id: int) -> Job:
    job = session.scalars(select(Job).where(Job.id == job_id, visible_to(principal))).one_or_none()
    if job is None:
        raise _not_found(job_id)
    return job


def list_jobs(
    session: Session,
    principal: Principal,
    page: Keyset,
    *,
    project_id: int | None = None,
    status: JobStatus | None = None,
    kind: str | None = None,
) -> list[Job]:
    """Newest first; the cursor is the last id of the previous page."""
    stmt = select(Job).where(visible_to(principal)).order_by(Job.id.desc()).limit(page.limit + 1)
    if page.after_id is not None:
        stmt = stmt.where(Job.id < page.after_id)
    if project_id is not None:
        stmt = stmt.where(Job.project_id == project_id)
    if status is not None:
        stmt = stmt.where(Job.status == status.value)
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    return list(session.scalars(stmt))


def cancel_job(session: Session, principal: Principal, job_id: int) -> Job:
    """Cancel a job (its creator or an admin). A queued job ends `cancelled` now; a running one
    is asked to stop and ends `cancelled` at its handler's next progress or cancel check.
    Cancelling a cancelled job again changes nothing; a succeeded or failed one is a 409."""
    job = session.scalars(
        select(Job).where(Job.id == job_id, visible_to(principal)).with_for_update()
    ).one_or_none()
    if job is None:
        raise _not_found(job_id)
    if not principal.is_admin and job.created_by != principal.id:
        raise Forbidden(f"Only the creator of job {job_id} or an admin may cancel it.")
    if job.status in (JobStatus.succeeded, JobStatus.failed):
        raise Conflict(f"Job {job_id} already {job.status}; there is nothing to cancel.")
    if job.status == JobStatus.cancelled or job.cancel_requested_at is not None:
        return job
    values: dict[str, Any] = {"cancel_requested_at": func.now()}
    if job.status == JobStatus.queued:
        values |= {"status": JobStatus.cancelled.value, "finished_at": func.now()}
    session.execute(update(Job).where(Job.id == job_id).values(**values))
    record(session, principal.id, "jobs.cancel", "job", job_id, kind=job.kind, was=job.status)
    session.flush()
    session.refresh(job)
    return job
