"""JSON routes for annotating: next task, submit, skip, draft autosave."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from app.assignments import engine
from app.assignments.schemas import SkipIn, SkipOut, SubmitIn, SubmitOut, TaskOut
from app.auth.deps import as_caller, request_credentials
from app.validation import JsonObject, PathId

router = APIRouter(prefix="/api/v1", tags=["annotating"])


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
        as_caller, creds, lambda s, p: engine.next_task(s, p, project_id)
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
        as_caller,
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
async def skip(assignment_id: PathId, request: Request, body: SkipIn | None = None) -> SkipOut:
    creds = request_credentials(request)
    reason = body.reason if body else None
    new_status = await run_in_threadpool(
        as_caller, creds, lambda s, p: engine.skip(s, p, assignment_id, reason)
    )
    return SkipOut(assignment_id=assignment_id, status=new_status)


class DraftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    draft: JsonObject


class DraftOut(BaseModel):
    saved_at: datetime


@router.put("/assignments/{assignment_id}/draft", response_model=DraftOut)
async def save_draft(assignment_id: PathId, body: DraftIn, request: Request) -> DraftOut:
    creds = request_credentials(request)
    saved = await run_in_threadpool(
        as_caller, creds, lambda s, p: engine.save_draft(s, p, assignment_id, body.draft)
    )
    return DraftOut(saved_at=saved)
