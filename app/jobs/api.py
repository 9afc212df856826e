"""Background work as its owners see it: list, status and progress, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.deps import CurrentUser, DbSession
from app.jobs import service
from app.jobs.models import JobStatus
from app.jobs.schemas import JobOut
from app.pagination import Cursor, Keyset, Limit, Page
from app.validation import BIGINT_MAX, PathId

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.get("", response_model=Page)
def list_jobs(
    principal: CurrentUser,
    session: DbSession,
    project_id: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
    status: JobStatus | None = None,
    kind: Annotated[str | None, Query(max_length=100, pattern=r"^[a-z0-9_.\-]+$")] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page:
    """Jobs the caller may see, newest first: admins all, others their own and those of their
    projects whose kind their role may see."""
    page = Keyset.parse(limit, cursor)
    rows = service.list_jobs(
        session, principal, page, project_id=project_id, status=status, kind=kind
    )
    return page.page([JobOut.model_validate(j) for j in rows])


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: PathId, principal: CurrentUser, session: DbSession) -> JobOut:
    return JobOut.model_validate(service.get_job(session, principal, job_id))


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: PathId, principal: CurrentUser, session: DbSession) -> JobOut:
    """Queued: cancelled now. Running: `cancel_requested` is set and the job ends `cancelled` at
    its next progress step. Already cancelled: unchanged. Succeeded or failed: 409."""
    return JobOut.model_validate(service.cancel_job(session, principal, job_id))
