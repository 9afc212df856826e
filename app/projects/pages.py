"""HTML routes: my projects, a project's progress, and the researchers' forms (create, edit,
upload items, members), on the same service functions as the JSON API."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from app.auth import invitations
from app.auth.deps import DbSession
from app.auth.models import InvitedRole, Role
from app.auth.schemas import Email
from app.auth.service import Principal, require_role
from app.config import get_settings
from app.demo.seed import LOOP_PROJECT
from app.errors import DomainError, Invalid, NotFound
from app.items import importer
from app.jobs import service as jobs
from app.pagination import Keyset
from app.projects import progress, service
from app.projects.errors import UnknownEmail
from app.projects.models import Project
from app.projects.rules import TaskKind
from app.projects.schemas import ProjectCreate, ProjectPatch
from app.validation import STORABLE, PathId
from app.web.deps import FormUser, PageRoute, PageUser
from app.web.flash import read_flash, redirect_with_error
from app.web.markdown import render_markdown
from app.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
_EMAIL = TypeAdapter(Email)

KIND_HINTS = {
    TaskKind.pairwise: "Compare two responses and pick the better one.",
    TaskKind.ranking: "Order 2 to 16 responses from best to worst.",
    TaskKind.span: "Mark labelled spans of text in one response.",
    TaskKind.critique: "Write a critique of one response and optionally rewrite it.",
}


PAGE_SIZE = 50
Search = Annotated[str, Query(max_length=200), STORABLE]
PageCursor = Annotated[str | None, Query(pattern=r"^[0-9]{1,19}$")]
PageNumber = Annotated[int, Query(ge=1, le=100_000)]


@router.get("/")
def my_projects(
    request: Request,
    principal: PageUser,
    session: DbSession,
    q: Search = "",
    cursor: PageCursor = None,
) -> Response:
    """Newest first, 50 a page, with a search on the name."""
    page = Keyset.parse(PAGE_SIZE, cursor)
    found = service.list_projects(session, principal, page, query=q, newest_first=True)
    projects = found[:PAGE_SIZE]
    counts = progress.progress_of(session, principal, [p.id for p in projects])
    next_cursor = page.next_cursor([p.id for p in found])
    return render(
        request,
        "projects.html",
        {
            "rows": [(p, counts[p.id]) for p in projects],
            "is_researcher": _researcher(principal),
            "q": q,
            "first_page": cursor is None,
            "next_url": f"/?{urlencode({'q': q, 'cursor': next_cursor})}" if next_cursor else "",
        },
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


# The API's messages name its fields; the forms say the same in the words on the form.
_FORM_WORDS = {
    "span_labels": "span labels",
    "lease_seconds": "lease (seconds)",
    "allow_tie": "allow ties",
    "gold_answer": "gold answer",
}


def in_form_words(message: str) -> str:
    for field, words in _FORM_WORDS.items():
        message = message.replace(f"entry in {field}", words[:-1] if words.endswith("s") else words)
        message = message.replace(field, words)
    return message[:1].upper() + message[1:]


def _validation_message(err: ValidationError) -> str:
    """The first problem, in the form's words ("Span labels: ..."), never a field's name."""
    first = err.errors()[0]
    where = " ".join(str(p) for p in first["loc"]).replace("_", " ")
    msg = str(first["msg"]).removeprefix("Value error, ")
    return f"{where.capitalize()}: {msg}." if where else f"{msg}."


def _project_form(
    request: Request,
    principal: Principal,
    values: dict[str, Any],
    *,
    project: Project | None = None,
    error: str = "",
) -> Response:
    return render(
        request,
        "project_form.html",
        {"values": values, "project": project, "error": error, "kinds": KIND_HINTS},
        principal=principal,
    )


_NEW_DEFAULTS: dict[str, Any] = {
    "name": "", "kind": "pairwise", "guidelines": "", "overlap": 1, "span_labels": [],
    "aspects": [], "allow_tie": True, "lease_seconds": 900,
}  # fmt: skip


@router.get("/projects/new")
def new_project_form(request: Request, principal: PageUser) -> Response:
    require_role(principal, Role.researcher)
    errors, typed = read_flash(request)
    return _project_form(
        request, principal, {**_NEW_DEFAULTS, **typed}, error=errors.get("form", "")
    )


@router.post("/projects/new")
async def create_project(request: Request, principal: FormUser, session: DbSession) -> Response:
    require_role(principal, Role.researcher)
    body = _settings_from_form(await request.form())
    try:
        create = ProjectCreate.model_validate(body)
        project = await run_in_threadpool(service.create_project, session, principal, create)
    except (ValidationError, Invalid) as exc:
        session.rollback()
        message = _validation_message(exc) if isinstance(exc, ValidationError) else exc.message
        typed = {k: v for k, v in body.items() if v is not None}
        return redirect_with_error("/projects/new", {"form": in_form_words(message)}, typed)
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
    errors, typed = read_flash(request)
    return _project_form(
        request, principal, {**_values(project), **typed}, project=project,
        error=errors.get("form", ""),
    )  # fmt: skip


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
        typed = {k: v for k, v in body.items() if v is not None}
        return redirect_with_error(
            f"/projects/{project_id}/settings", {"form": in_form_words(message)}, typed
        )
    return RedirectResponse(f"/projects/{project_id}?notice=saved", status_code=303)


NOTICES = {
    "created": "Project created. Upload items and add members to get started.",
    "demo_loop": (
        "The closed-loop demo is queued: a worker runs it (see Background jobs), and its loop"
        " appears under Loops once it starts."
    ),
    "saved": "Settings saved.",
    "imported": "Items imported.",
    "queued": "The file is large: it is being imported in the background (see Background jobs).",
    "member_added": "Member added.",
    "member_removed": "Member removed.",
    "invited": "Invitation created: copy its link below and send it to them.",
    "invitation_revoked": "Invitation withdrawn; its link no longer works.",
    "welcome": "Welcome! Your account is ready.",
    "archived": "Project archived: annotators no longer see it; its data stays for export.",
    "unarchived": "Project unarchived: annotators see it again.",
    "job_cancel": "Cancel requested: a queued job ends now, a running one at its next step.",
}
LIST_SIZE = 25
RECENT_JOBS = 5


def _project_page(
    request: Request,
    principal: Principal,
    session: DbSession,
    project_id: int,
    members_after: str | None,
    annotators_page: int,
) -> Response:
    project = service.get_project(session, principal, project_id)
    is_researcher = _researcher(principal)
    notice = NOTICES.get(request.query_params.get("notice", ""), "")
    created, skipped = request.query_params.get("created"), request.query_params.get("skipped")
    if notice and created is not None and created.isdigit():
        notice = f"{notice} {created} new, {skipped if (skipped or '').isdigit() else 0} skipped."
    errors, typed = read_flash(request)
    context: dict[str, Any] = {
        "project": project,
        "progress": progress.project_progress(session, principal, project.id),
        "guidelines_html": render_markdown(project.guidelines),
        "is_researcher": is_researcher,
        "notice": notice,
        "errors": errors,
        "typed": typed,
        "annotators": [],
        "members": [],
        "invitations": [],
        "jobs": [],
        # The closed-loop demo's button shows on its project (app/loops/demo_pages.py).
        "demo_loop": is_researcher and project.name == LOOP_PROJECT,
    }
    if is_researcher:
        annotators = progress.annotator_progress(
            session, principal, project.id, LIST_SIZE + 1, (annotators_page - 1) * LIST_SIZE
        )
        members_page = Keyset.parse(LIST_SIZE, members_after)
        members = service.list_members(session, principal, project.id, members_page)
        members_next = members_page.next_cursor([m.user_id for m in members])
        pending = invitations.list_invitations(
            session, principal, project.id, Keyset(LIST_SIZE, None), pending_only=True
        )
        here = f"/projects/{project.id}"
        context |= {
            "annotators": annotators[:LIST_SIZE],
            "annotators_prev": (
                f"{here}?annotators_page={annotators_page - 1}#annotators"
                if annotators_page > 1
                else ""
            ),
            "annotators_next": (
                f"{here}?annotators_page={annotators_page + 1}#annotators"
                if len(annotators) > LIST_SIZE
                else ""
            ),
            "members": members[:LIST_SIZE],
            "members_first": f"{here}#members" if members_after else "",
            "members_next": f"{here}?members_after={members_next}#members" if members_next else "",
            "invitations": [(i, invitations.link_of(i)) for i in pending[:LIST_SIZE]],
            "invitations_more": len(pending) > LIST_SIZE,
            "invited_roles": list(InvitedRole),
            "jobs": jobs.list_jobs(
                session, principal, Keyset(RECENT_JOBS, None), project_id=project.id
            )[:RECENT_JOBS],
        }
    return render(request, "project.html", context, principal=principal)


@router.get("/projects/{project_id}")
def project_page(
    project_id: PathId,
    request: Request,
    principal: PageUser,
    session: DbSession,
    members_after: PageCursor = None,
    annotators_page: PageNumber = 1,
) -> Response:
    return _project_page(request, principal, session, project_id, members_after, annotators_page)


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
        if exc.status_code in (403, 404):
            raise
        return redirect_with_error(f"/projects/{project_id}#upload", {"upload": exc.message})
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
    except UnknownEmail as exc:
        session.rollback()
        # Point to the invitation form, filled in with the address.
        return redirect_with_error(
            f"/projects/{project_id}#members",
            {"members": exc.message, "invite_hint": "1"},
            {"invite_email": exc.email},
        )
    except DomainError as exc:
        session.rollback()
        if exc.status_code in (403, 404):  # not allowed, or a project you cannot see
            raise
        return redirect_with_error(f"/projects/{project_id}#members", {"members": exc.message})
    return RedirectResponse(f"/projects/{project_id}?notice=member_added", status_code=303)


@router.post("/projects/{project_id}/members/{user_id}/remove")
def remove_member(
    project_id: PathId, user_id: PathId, principal: FormUser, session: DbSession
) -> Response:
    service.remove_member(session, principal, project_id, user_id)
    return RedirectResponse(f"/projects/{project_id}?notice=member_removed", status_code=303)


@router.post("/projects/{project_id}/invitations")
async def invite(
    project_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    """Invite an email into this project; the link is then listed under the members."""
    require_role(principal, Role.researcher)
    form = await request.form()
    raw_email, raw_role = form.get("email"), form.get("role")
    email = raw_email if isinstance(raw_email, str) else ""
    role = raw_role if isinstance(raw_role, str) else ""
    back = f"/projects/{project_id}#invitations"
    try:
        address = _EMAIL.validate_python(email)
        if role not in {r.value for r in InvitedRole}:
            raise Invalid("Choose the role of the person you invite: annotator or researcher.")
        await run_in_threadpool(
            invitations.create_invitation,
            session, principal, project_id, address, InvitedRole(role),
        )  # fmt: skip
    except ValidationError:
        await run_in_threadpool(service.get_project, session, principal, project_id)
        return redirect_with_error(
            back, {"invite": f"“{email}” is not an email address."}, {"invite_email": email}
        )
    except DomainError as exc:
        session.rollback()
        if exc.status_code in (403, 404):
            raise
        return redirect_with_error(back, {"invite": exc.message}, {"invite_email": email})
    return RedirectResponse(f"/projects/{project_id}?notice=invited#invitations", status_code=303)


@router.post("/projects/{project_id}/invitations/{invitation_id}/revoke")
def revoke_invitation(
    project_id: PathId, invitation_id: PathId, principal: FormUser, session: DbSession
) -> Response:
    invitation = invitations.revoke_invitation(session, principal, invitation_id)
    if invitation.project_id != project_id:
        raise NotFound(f"Invitation {invitation_id} is not one of project {project_id}.")
    return RedirectResponse(
        f"/projects/{project_id}?notice=invitation_revoked#invitations", status_code=303
    )


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
        return redirect_with_error(f"/projects/{project_id}#delete", {"delete": exc.message})
    return RedirectResponse("/?notice=deleted", status_code=303)
