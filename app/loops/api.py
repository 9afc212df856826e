"""JSON routes of loops: start, list, read (iterations, steps, metrics), pause, resume, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.auth.deps import DbSession, Researcher
from app.loops import service
from app.loops.schemas import LoopCreate, LoopOut, LoopQueued
from app.pagination import Cursor, Keyset, Limit, Page
from app.validation import BIGINT_MAX, PathId

router = APIRouter(prefix="/api/v1/loops", tags=["loops"])


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=LoopQueued)
def create_loop(body: LoopCreate, principal: Researcher, session: DbSession) -> LoopQueued:
    """Start a loop; `job_id` is iteration 1's generation job. Each step's job starts when the
    previous one has ended (workers move loops on); poll GET /loops/{id}."""
    loop, job = service.create_loop(session, principal, body)
    return LoopQueued(id=loop.id, job_id=job.id, status=loop.status.value)


@router.get("", response_model=Page)
def list_loops(
    principal: Researcher,
    session: DbSession,
    project_id: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page:
    """Loops of the projects the caller may see, newest first."""
    page = Keyset.parse(limit, cursor)
    rows = service.list_loops(session, principal, page, project_id)
    return page.page([service.summary(session, r) for r in rows])


@router.get("/{loop_id}", response_model=LoopOut)
def get_loop(loop_id: PathId, principal: Researcher, session: DbSession) -> LoopOut:
    return service.to_out(session, service.get_loop(session, principal, loop_id))


@router.post("/{loop_id}/pause", response_model=LoopOut)
def pause_loop(loop_id: PathId, principal: Researcher, session: DbSession) -> LoopOut:
    """The running step finishes; the next one waits for resume (creator or admin)."""
    return service.to_out(session, service.pause_loop(session, principal, loop_id))


@router.post("/{loop_id}/resume", response_model=LoopOut)
def resume_loop(loop_id: PathId, principal: Researcher, session: DbSession) -> LoopOut:
    return service.to_out(session, service.resume_loop(session, principal, loop_id))


@router.post("/{loop_id}/cancel", response_model=LoopOut)
def cancel_loop(loop_id: PathId, principal: Researcher, session: DbSession) -> LoopOut:
    """End the loop and cancel its running step's job (creator or admin)."""
    return service.to_out(session, service.cancel_loop(session, principal, loop_id))
