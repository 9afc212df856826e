"""GET /api/v1/jobs/{id}: status and progress of background work."""

from __future__ import annotations

from fastapi import APIRouter

from app.auth.deps import CurrentUser, DbSession
from app.jobs import service
from app.jobs.schemas import JobOut
from app.validation import PathId

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: PathId, principal: CurrentUser, session: DbSession) -> JobOut:
    return JobOut.model_validate(service.get_job(session, principal, job_id))
