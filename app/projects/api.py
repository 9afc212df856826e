"""JSON routes for projects and their members."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request, status
from starlette.concurrency import run_in_threadpool

from app.auth.deps import Admin, CurrentUser, DbSession, Researcher, as_caller, request_credentials
from app.pagination import Cursor, Keyset, Limit, Page
from app.projects import progress, service
from app.projects.schemas import (
    MemberAdd,
    MemberOut,
    ProgressOut,
    ProjectCreate,
    ProjectOut,
    ProjectPatch,
)
from app.validation import PathId

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


@router.post("", response_model=ProjectOut, status_code=status.HTTP_201_CREATED)
def create_project(body: ProjectCreate, principal: Researcher, session: DbSession) -> ProjectOut:
    return ProjectOut.model_validate(service.create_project(session, principal, body))


@router.get("", response_model=Page)
def list_projects(
    principal: CurrentUser, session: DbSession, limit: Limit = None, cursor: Cursor = None
) -> Page:
    page = Keyset.parse(limit, cursor)
    projects = service.list_projects(session, principal, page)
    return page.page([ProjectOut.model_validate(p) for p in projects])


@router.get("/{project_id}", response_model=ProjectOut)
def get_project(project_id: PathId, principal: CurrentUser, session: DbSession) -> ProjectOut:
    return ProjectOut.model_validate(service.get_project(session, principal, project_id))


@router.patch("/{project_id}", response_model=ProjectOut)
def patch_project(
    project_id: PathId, body: ProjectPatch, principal: Researcher, session: DbSession
) -> ProjectOut:
    return ProjectOut.model_validate(service.update_project(session, principal, project_id, body))


@router.get("/{project_id}/members", response_model=list[MemberOut])
def list_members(project_id: PathId, principal: Researcher, session: DbSession) -> list[MemberOut]:
    return list(service.list_members(session, principal, project_id))


@router.post("/{project_id}/members", status_code=status.HTTP_201_CREATED)
def add_member(
    project_id: PathId, body: MemberAdd, principal: Researcher, session: DbSession
) -> dict[str, int]:
    service.add_member(session, principal, project_id, body.user_id)
    return {"project_id": project_id, "user_id": body.user_id}


@router.delete("/{project_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(
    project_id: PathId, user_id: PathId, principal: Researcher, session: DbSession
) -> None:
    service.remove_member(session, principal, project_id, user_id)


@router.get("/{project_id}/progress", response_model=ProgressOut)
async def get_progress(project_id: PathId, request: Request) -> ProgressOut:
    # One thread hop: the workspace asks for it after every task.
    done = await run_in_threadpool(
        as_caller,
        request_credentials(request),
        lambda s, p: progress.project_progress(s, p, project_id),
    )
    return ProgressOut(
        **asdict(done), percent_complete=done.percent_complete, percent_votes=done.percent_votes
    )


@router.post("/{project_id}/archive", response_model=ProjectOut)
def archive_project(project_id: PathId, principal: Researcher, session: DbSession) -> ProjectOut:
    """Hide the project from annotators and stop handing out tasks; its data stays for export.
    Archiving an archived project changes nothing."""
    return ProjectOut.model_validate(service.set_archived(session, principal, project_id, True))


@router.post("/{project_id}/unarchive", response_model=ProjectOut)
def unarchive_project(project_id: PathId, principal: Researcher, session: DbSession) -> ProjectOut:
    return ProjectOut.model_validate(service.set_archived(session, principal, project_id, False))


@router.delete("/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_project(project_id: PathId, principal: Admin, session: DbSession) -> None:
    """Delete the project with its items, votes, exports and jobs (admins). 409 `jobs_running`
    while one of its jobs is queued or running."""
    service.delete_project(session, principal, project_id)
