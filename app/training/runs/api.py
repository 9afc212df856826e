"""JSON routes of training runs: start, list, read (status, metrics, artifact, lineage), cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.auth.deps import DbSession, Researcher
from app.pagination import Cursor, Keyset, Limit, Page
from app.training.runs import service
from app.training.runs.schemas import RunCreate, RunOut, RunQueued
from app.validation import BIGINT_MAX, PathId

router = APIRouter(prefix="/api/v1/training-runs", tags=["training"])


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=RunQueued)
def create_run(body: RunCreate, principal: Researcher, session: DbSession) -> RunQueued:
    """Queue a run; its job trains on the `gpu` queue (or `cpu-train` without a GPU worker).
    Poll GET /training-runs/{id} (or the job) for progress."""
    run, job = service.create_run(session, principal, body)
    return RunQueued(id=run.id, job_id=job.id, export_id=run.export_id)


@router.get("", response_model=Page)
def list_runs(
    principal: Researcher,
    session: DbSession,
    project_id: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page:
    """Runs of the projects the caller may see, newest first."""
    page = Keyset.parse(limit, cursor)
    rows = service.list_runs(session, principal, page, project_id)
    return page.page([service.to_out(session, r) for r in rows])


@router.get("/{training_run_id}", response_model=RunOut)
def get_run(training_run_id: PathId, principal: Researcher, session: DbSession) -> RunOut:
    return service.to_out(session, service.get_run(session, principal, training_run_id))


@router.post("/{training_run_id}/cancel", response_model=RunOut)
def cancel_run(training_run_id: PathId, principal: Researcher, session: DbSession) -> RunOut:
    """As POST /jobs/{job_id}/cancel on the run's job (its creator or an admin)."""
    return service.to_out(session, service.cancel_run(session, principal, training_run_id))
