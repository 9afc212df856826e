"""HTML routes: my projects, a project's progress, and the researchers' forms (create, edit,
upload items, members), on the same service functions as the JSON API."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from app.auth.deps import DbSession
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.config import get_settings
from app.errors import DomainError, Invalid
from app.items import importer
from app.jobs import service as jobs
from app.pagination import MAX_LIMIT, Keyset
from app.projects import progress, service
from app.projects.models import Project
from app.projects.rules import TaskKind
from app.projects.schemas import ProjectCreate, ProjectPatch
from app.validation import PathId
from app.web.deps import FormUser, PageRoute, PageUser
from app.web.markdown import render_markdown
from app.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

KIND_HINTS = {
    TaskKind.pairwise: "Compare two responses and pick the better one.",
    TaskKind.ranking: "Order 2 to 16 responses from best to worst.",
    TaskKind.span: "Mark labelled spans of text in one response.",
    TaskKind.critique: "Write a critique of one response and optionally rewrite it.",
}


@router.get("/")
def my_projects(request: Request, principal: PageUser, session: DbSession) -> Response:
    projects = service.list_projects(session, principal, Keyset(MAX_LIMIT, None))
    counts = progress.progress_of(session, principal, [p.id for p in projects])
    return render(
        request,
        "projects.html",
        {"rows": [(p, counts[p.id]) for p in projects], "is_researcher": _researcher(principal)},
        principal=principal,
    )


def _researcher(principal: Principal) -> bool:
    return principal.has_role(Role.researcher)


def _lines(value: str) -> list[str] | None:
    items = [line.strip() for line in value.replace(",", "\n").splitlines() if line.strip()]
    return items or None


def _settings_from_form(form: FormData) -> dict[str, Any]:
    """The create/edit form, as the JSON body the API would take."""

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    body: dict[str, Any] = {
        "name": text("name"),
        "guidelines": str(form.get("guidelines") or ""),
        "allow_tie": form.get("allow_tie") == "on",
    }
    for field in ("overlap", "lease_seconds"):
        if text(field):
            body[field] = text(field)
    kind = text("kind")
    if kind:
        body["kind"] = kind
    if kind in ("", TaskKind.span.value):
        body["span_labels"] = _lines(text("span_labels"))
    if kind in ("", TaskKind.pairwise.value):
        body["aspects"] = _lines(text("aspects"))
    return body


def _validation_message(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]).replace("_", " ")
    return f"{where}: {first['msg']}." if where else f"{first['msg']}."


def _project_form(
    request: Request,
    principal: Principal,
    values: dict[str, Any],
    *,
    project: Project | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    return render(
        request,
        "project_form.html",
        {"values": values, "project": project, "error": error, "kinds": KIND_HINTS},
        principal=principal,
        status_code=status,
    )


_NEW_DEFAULTS: dict[str, Any] = {
    "name": "", "kind": "pairwise", "guidelines": "", "overlap": 1, "span_labels": [],
    "aspects": [], "allow_tie": True, "lease_seconds": 900,
}  # fmt: skip


@router.get("/projects/new")
def new_project_form(request: Request, principal: PageUser) -> Response:
    require_role(principal, Role.researcher)
    return _project_form(request, principal, dict(_NEW_DEFAULTS))


@router.post("/projects/new")
async def create_project(request: Request, principal: FormUser, session: DbSession) -> Response:
    require_role(principal, Role.researcher)
    body = _settings_from_form(await request.form())
    try:
        create = ProjectCreate.model_validate(body)
        project = await run_in_threadpool(service.create_project, session, principal, create)
    except ValidationError as err:
        values = {**_NEW_DEFAULTS, **{k: v for k, v in body.items() if v is not None}}
        return _project_form(request, principal, values, error=_validation_message(err), status=422)
    except Invalid as exc:
        session.rollback()
        values = {**_NEW_DEFAULTS, **{k: v for k, v in body.items() if v is not None}}
        return _project_form(request, principal, values, error=exc.message, status=422)
    return RedirectResponse(f"/projects/{project.id}?notice=created", status_code=303)


def _values(project: Project) -> dict[str, Any]:
    return {
        "name": project.name, "kind": project.kind, "guidelines": project.guidelines,
        "overlap": project.overlap, "span_labels": project.span_labels,
        "aspects": project.aspects, "allow_tie": project.allow_tie,
        "lease_seconds": project.lease_seconds,
    }  # fmt: skip


@router.get("/projects/{project_id}/settings")
def edit_project_form(
    project_id: PathId, request: Request, principal: PageUser, session: DbSession
) -> Response:
    require_role(principal, Role.researcher)
    project = service.get_project(session, principal, project_id)
    return _project_form(request, principal, _values(project), project=project)


@router.post("/projects/{project_id}/settings")
async def edit_project(
    project_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    require_role(principal, Role.researcher)
    project = await run_in_threadpool(service.get_project, session, principal, project_id)
    body = _settings_from_form(await request.form())
    body.pop("kind", None)
    if project.kind != TaskKind.span.value:
        body.pop("span_labels", None)
    if project.kind != TaskKind.pairwise.value:
        body.pop("aspects", None)
    elif body.get("aspects") is None:
        body["aspects"] = []
    try:
        patch = ProjectPatch.model_validate(body)
        await run_in_threadpool(service.update_project, session, principal, project_id, patch)
    except (ValidationError, Invalid) as exc:
        session.rollback()
        message = _validation_message(exc) if isinstance(exc, ValidationError) else exc.message
        values = {**_values(project), **{k: v for k, v in body.items() if v is not None}}
        return _project_form(request, principal, values, project=project, error=message, status=422)
    return RedirectResponse(f"/projects/{project_id}?notice=saved", status_code=303)


NOTICES = {
    "created": "Project created. Upload items and add members to get started.",
    "saved": "Settings saved.",
    "imported": "Items imported.",
    "queued": "The file is large: it is being imported in the background (see Background jobs).",
    "member_added": "Member added.",
    "member_removed": "Member removed.",
    "archived": "Project archived: annotators no longer see it; its data stays for export.",
    "unarchived": "Project unarchived: annotators see it again.",
    "job_cancel": "Cancel requested: a queued job ends now, a running one at its next step.",
}
RECENT_JOBS = 5


def _project_page(
    request: Request,
    principal: Principal,
    session: DbSession,
    project_id: int,
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    project = service.get_project(session, principal, project_id)
    is_researcher = _researcher(principal)
    notice = NOTICES.get(request.query_params.get("notice", ""), "")
    created, skipped = request.query_params.get("created"), request.query_params.get("skipped")
    if notice and created is not None and created.isdigit():
        notice = f"{notice} {created} new, {skipped if (skipped or '').isdigit() else 0} skipped."
    return render(
        request,
        "project.html",
        {
            "project": project,
            "progress": progress.project_progress(session, principal, project.id),
            "annotators": (
                progress.annotator_progress(session, principal, project.id) if is_researcher else []
            ),
            "members": (
                service.list_members(session, principal, project.id) if is_researcher else []
            ),
            "jobs": (
                jobs.list_jobs(session, principal, Keyset(RECENT_JOBS, None), project_id=project.id)
                if is_researcher
                else []
            )[:RECENT_JOBS],
            "guidelines_html": render_markdown(project.guidelines),
            "is_researcher": is_researcher,
            "notice": notice,
            "errors": errors or {},
        },
        principal=principal,
        status_code=status,
    )


@router.get("/projects/{project_id}")
def project_page(
    project_id: PathId, request: Request, principal: PageUser, session: DbSession
) -> Response:
    return _project_page(request, principal, session, project_id)


@router.post("/projects/{project_id}/items")
async def upload_items(
    project_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    """The upload form: the same import (and the same row-numbered errors) as the API."""
    require_role(principal, Role.researcher)
    form = await request.form()
    upload = form.get("file")
    raw_format = form.get("format")
    fmt: Literal["json", "jsonl", "parquet"] | None = (
        raw_format if raw_format in ("json", "jsonl", "parquet") else None  # type: ignore[assignment]
    )
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Invalid("Choose a file to upload (JSON array, JSONL or Parquet).")
        if fmt is None and upload.filename.endswith(".parquet"):
            fmt = "parquet"
        size = upload.size or 0
        if size > get_settings().async_import_bytes:
            await run_in_threadpool(
                importer.queue_import, session, principal, project_id, upload.file, fmt
            )
            return RedirectResponse(f"/projects/{project_id}?notice=queued", status_code=303)
        result = await run_in_threadpool(
            importer.import_file, session, principal, project_id, upload.file, fmt
        )
    except DomainError as exc:
        # Nothing of a rejected file is kept.
        session.rollback()
        return await run_in_threadpool(
            _project_page, request, principal, session, project_id,
            errors={"upload": exc.message}, status=exc.status_code,
        )  # fmt: skip
    return RedirectResponse(
        f"/projects/{project_id}?notice=imported&created={result.created}&skipped={result.skipped}",
        status_code=303,
    )


@router.post("/projects/{project_id}/members")
async def add_member(
    project_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    form = await request.form()
    email = form.get("email")
    try:
        await run_in_threadpool(
            service.add_member_by_email,
            session, principal, project_id, email if isinstance(email, str) else "",
        )  # fmt: skip
    except DomainError as exc:
        session.rollback()
        if exc.status_code == 403:
            raise
        return await run_in_threadpool(
            _project_page, request, principal, session, project_id,
            errors={"members": exc.message}, status=exc.status_code,
        )  # fmt: skip
    return RedirectResponse(f"/projects/{project_id}?notice=member_added", status_code=303)


@router.post("/projects/{project_id}/members/{user_id}/remove")
def remove_member(
    project_id: PathId, user_id: PathId, principal: FormUser, session: DbSession
) -> Response:
    service.remove_member(session, principal, project_id, user_id)
    return RedirectResponse(f"/projects/{project_id}?notice=member_removed", status_code=303)


@router.post("/projects/{project_id}/archive")
def archive_project(project_id: PathId, principal: FormUser, session: DbSession) -> Response:
    service.set_archived(session, principal, project_id, True)
    return RedirectResponse(f"/projects/{project_id}?notice=archived", status_code=303)


@router.post("/projects/{project_id}/unarchive")
def unarchive_project(project_id: PathId, principal: FormUser, session: DbSession) -> Response:
    service.set_archived(session, principal, project_id, False)
    return RedirectResponse(f"/projects/{project_id}?notice=unarchived", status_code=303)


@router.post("/projects/{project_id}/delete")
async def delete_project(
    project_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    """Delete after confirmation: the form asks for the project's name, typed again."""
    require_role(principal, Role.admin)
    form = await request.form()
    typed = form.get("confirm_name")
    try:
        project = await run_in_threadpool(service.get_project, session, principal, project_id)
        if not isinstance(typed, str) or typed.strip() != project.name.strip():
            raise Invalid("Type the project's name exactly to confirm the deletion.")
        await run_in_threadpool(service.delete_project, session, principal, project_id)
    except DomainError as exc:
        session.rollback()
        if exc.status_code in (403, 404):
            raise
        return await run_in_threadpool(
            _project_page, request, principal, session, project_id,
            errors={"delete": exc.message}, status=exc.status_code,
        )  # fmt: skip
    return RedirectResponse("/?notice=deleted", status_code=303)
