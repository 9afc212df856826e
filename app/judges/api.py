"""JSON routes for judges, their prompt templates, judge runs and judge metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.auth.deps import Admin, DbSession, Researcher
from app.judges import service
from app.judges.schemas import (
    JudgeCreate,
    JudgeOut,
    JudgePatch,
    JudgeRunCreate,
    JudgeRunOut,
    JudgeRunQueued,
    TemplateCreate,
    TemplateOut,
    TemplatePatch,
)
from app.pagination import Cursor, Keyset, Limit, Page
from app.projects.rules import TaskKind
from app.validation import PathId

router = APIRouter(prefix="/api/v1", tags=["judges"])


@router.post("/judges", status_code=status.HTTP_201_CREATED, response_model=JudgeOut)
def create_judge(body: JudgeCreate, principal: Admin, session: DbSession) -> JudgeOut:
    """A judge on a backend (`openai`, `vllm`, `transformers`, `simulated`); its params are
    checked by the backend (422 naming a bad or unknown key)."""
    return JudgeOut.model_validate(service.create_judge(session, principal, body))


@router.get("/judges", response_model=Page)
def list_judges(
    principal: Researcher, session: DbSession, limit: Limit = None, cursor: Cursor = None
) -> Page:
    page = Keyset.parse(limit, cursor)
    rows = service.list_judges(session, principal, page)
    return page.page([JudgeOut.model_validate(r) for r in rows])


@router.get("/judges/{judge_id}", response_model=JudgeOut)
def get_judge(judge_id: PathId, principal: Researcher, session: DbSession) -> JudgeOut:
    return JudgeOut.model_validate(service.get_judge(session, principal, judge_id))


@router.patch("/judges/{judge_id}", response_model=JudgeOut)
def update_judge(
    judge_id: PathId, body: JudgePatch, principal: Admin, session: DbSession
) -> JudgeOut:
    return JudgeOut.model_validate(service.update_judge(session, principal, judge_id, body))


@router.get("/judge-templates", response_model=Page)
def list_templates(
    principal: Researcher,
    session: DbSession,
    kind: Annotated[TaskKind | None, Query()] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page:
    """Every version of every kind's template (version 1 of each kind is the default)."""
    page = Keyset.parse(limit, cursor)
    rows = service.list_templates(session, principal, page, kind)
    return page.page([TemplateOut.model_validate(r) for r in rows])


@router.post("/judge-templates", status_code=status.HTTP_201_CREATED, response_model=TemplateOut)
def create_template(body: TemplateCreate, principal: Admin, session: DbSession) -> TemplateOut:
    """A new version of the kind's template (placeholders checked: 422 `invalid_template`)."""
    return TemplateOut.model_validate(service.create_template(session, principal, body))


@router.get("/judge-templates/{template_id}", response_model=TemplateOut)
def get_template(template_id: PathId, principal: Researcher, session: DbSession) -> TemplateOut:
    return TemplateOut.model_validate(service.get_template(session, principal, template_id))


@router.patch("/judge-templates/{template_id}", response_model=TemplateOut)
def update_template(
    template_id: PathId, body: TemplatePatch, principal: Admin, session: DbSession
) -> TemplateOut:
    """Edits a version that no run has used; a used version is immutable, so the edit becomes
    the next version (the answer is that version)."""
    row = service.update_template(session, principal, template_id, body)
    return TemplateOut.model_validate(row)


@router.post(
    "/projects/{project_id}/judge-runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JudgeRunQueued,
)
def start_run(
    project_id: PathId, body: JudgeRunCreate, principal: Researcher, session: DbSession
) -> JudgeRunQueued:
    run, job = service.start_run(session, principal, project_id, body)
    return JudgeRunQueued(run_id=run.id, job_id=job.id)


@router.get("/projects/{project_id}/judge-runs", response_model=Page)
def list_runs(
    project_id: PathId,
    principal: Researcher,
    session: DbSession,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page:
    page = Keyset.parse(limit, cursor)
    rows = service.list_runs(session, principal, project_id, page)
    return page.page([service.run_out(session, r) for r in rows])


@router.get("/projects/{project_id}/judge-runs/{run_id}", response_model=JudgeRunOut)
def get_run(
    project_id: PathId, run_id: PathId, principal: Researcher, session: DbSession
) -> JudgeRunOut:
    """Progress (the job's status and fraction), counts (done, unparsed, inconsistent,
    failed, skipped), tokens and cost so far."""
    return service.run_out(session, service.get_run(session, principal, project_id, run_id))
