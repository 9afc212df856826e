"""JSON routes for annotating: next task, submit, skip, draft autosave."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict

from app.assignments import engine
from app.assignments.schemas import SkipIn, SkipOut, SubmitIn, SubmitOut, TaskOut
from app.auth.deps import CurrentUser, DbSession
from app.db import retrying

router = APIRouter(prefix="/api/v1", tags=["annotating"])


@router.post(
    "/projects/{project_id}/tasks/next",
    response_model=TaskOut,
    responses={204: {"description": "Nothing is left for you in this project."}},
)
def next_task(
    project_id: int, principal: CurrentUser, session: DbSession, response: Response
) -> TaskOut | Response:
    task = retrying(session, lambda: engine.next_task(session, principal, project_id))
    if task is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return TaskOut.model_validate(task)


@router.post(
    "/assignments/{assignment_id}/submit",
    response_model=SubmitOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": SubmitOut, "description": "Already submitted: the first annotation."}
    },
)
def submit(
    assignment_id: int,
    body: SubmitIn,
    principal: CurrentUser,
    session: DbSession,
    response: Response,
) -> SubmitOut:
    done = retrying(
        session,
        lambda: engine.submit(
            session,
            principal,
            assignment_id,
            body.payload,
            body.time_spent_ms,
            body.client_submission_id,
        ),
    )
    if not done.created:
        response.status_code = status.HTTP_200_OK
    return SubmitOut(annotation_id=done.annotation_id, over_quota=done.over_quota)


@router.post("/assignments/{assignment_id}/skip", response_model=SkipOut)
def skip(
    assignment_id: int, principal: CurrentUser, session: DbSession, body: SkipIn | None = None
) -> SkipOut:
    reason = body.reason if body else None
    new_status = retrying(session, lambda: engine.skip(session, principal, assignment_id, reason))
    return SkipOut(assignment_id=assignment_id, status=new_status)


class DraftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    draft: dict[str, Any]


class DraftOut(BaseModel):
    saved_at: datetime


@router.put("/assignments/{assignment_id}/draft", response_model=DraftOut)
def save_draft(
    assignment_id: int, body: DraftIn, principal: CurrentUser, session: DbSession
) -> DraftOut:
    return DraftOut(saved_at=engine.save_draft(session, principal, assignment_id, body.draft))
