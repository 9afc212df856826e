"""JSON routes for annotating: next task, submit, skip, draft autosave."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.assignments import engine
from app.assignments.schemas import SkipIn, SkipOut, SubmitIn, SubmitOut, TaskOut
from app.auth.deps import Credentials, CurrentUser, DbSession, principal_for, request_credentials
from app.auth.service import Principal
from app.db import retrying, session_scope
from app.validation import JsonObject, PathId

router = APIRouter(prefix="/api/v1", tags=["annotating"])


T = TypeVar("T")


def _as_caller(creds: Credentials, fn: Callable[[Session, Principal], T]) -> T:
    """Authenticate and run fn in one transaction on one worker thread.

    The annotate loop is the hot path: one thread hop per request (rather than one per
    dependency) and one transaction, committed before the response is sent.
    """
    with session_scope() as session:
        principal = principal_for(session, creds)
        return retrying(session, lambda: fn(session, principal))


def _task_json(task: dict[str, Any]) -> dict[str, Any]:
    return {**task, "expires_at": task["expires_at"].isoformat()}


@router.post(
    "/projects/{project_id}/tasks/next",
    response_model=TaskOut,
    responses={204: {"description": "Nothing is left for you in this project."}},
)
async def next_task(project_id: PathId, request: Request) -> Response:
    creds = request_credentials(request)
    task = await run_in_threadpool(
        _as_caller, creds, lambda s, p: engine.next_task(s, p, project_id)
    )
    if task is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return JSONResponse(_task_json(task))


@router.post(
    "/assignments/{assignment_id}/submit",
    response_model=SubmitOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": SubmitOut, "description": "Already submitted: the first annotation."}
    },
)
async def submit(assignment_id: PathId, body: SubmitIn, request: Request) -> Response:
    creds = request_credentials(request)
    done = await run_in_threadpool(
        _as_caller,
        creds,
        lambda s, p: engine.submit(
            s, p, assignment_id, body.payload, body.time_spent_ms, body.client_submission_id
        ),
    )
    return JSONResponse(
        {"annotation_id": done.annotation_id, "over_quota": done.over_quota},
        status_code=status.HTTP_201_CREATED if done.created else status.HTTP_200_OK,
    )


@router.post("/assignments/{assignment_id}/skip", response_model=SkipOut)
def skip(
    assignment_id: PathId, principal: CurrentUser, session: DbSession, body: SkipIn | None = None
) -> SkipOut:
    reason = body.reason if body else None
    new_status = retrying(session, lambda: engine.skip(session, principal, assignment_id, reason))
    return SkipOut(assignment_id=assignment_id, status=new_status)


class DraftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    draft: JsonObject


class DraftOut(BaseModel):
    saved_at: datetime


@router.put("/assignments/{assignment_id}/draft", response_model=DraftOut)
def save_draft(
    assignment_id: PathId, body: DraftIn, principal: CurrentUser, session: DbSession
) -> DraftOut:
    return DraftOut(saved_at=engine.save_draft(session, principal, assignment_id, body.draft))
