"""The jobs page: background work the caller may see (admins: all of it), newest first, with
progress and errors, filtered like `GET /api/v1/jobs`."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from app.auth.deps import DbSession
from app.auth.models import Role
from app.auth.service import require_role
from app.errors import DomainError
from app.jobs import service
from app.jobs.models import JobStatus
from app.pagination import Cursor, Keyset
from app.validation import BIGINT_MAX, PathId
from app.web.deps import FormUser, PageRoute, PageUser
from app.web.flash import read_flash, redirect_with_error
from app.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE_SIZE = 50


@router.get("/jobs")
def jobs_page(
    request: Request,
    principal: PageUser,
    session: DbSession,
    project_id: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
    status: JobStatus | None = None,
    kind: Annotated[str | None, Query(max_length=100, pattern=r"^[a-z0-9_.\-]*$")] = None,
    cursor: Cursor = None,
) -> Response:
    require_role(principal, Role.researcher)
    page = Keyset.parse(PAGE_SIZE, cursor)
    rows = service.list_jobs(
        session, principal, page, project_id=project_id, status=status, kind=kind or None
    )
    filters = {"project_id": project_id, "status": status.value if status else None, "kind": kind}
    query = urlencode({k: v for k, v in filters.items() if v})
    errors, _ = read_flash(request)
    return render(
        request,
        "jobs.html",
        {
            "jobs": rows[:PAGE_SIZE],
            "next_cursor": page.next_cursor([j.id for j in rows]),
            "filters": filters,
            "statuses": [s.value for s in JobStatus],
            "query": query,
            "first_page": cursor is None,
            "error": errors.get("jobs", ""),
        },
        principal=principal,
    )


@router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: PathId, principal: FormUser, session: DbSession) -> Response:
    """The pages' cancel button: the API's rule (its creator or an admin), then back to the
    job's project (or the jobs page); a job that ended meanwhile is said there."""
    job = service.get_job(session, principal, job_id)
    back = f"/projects/{job.project_id}" if job.project_id is not None else "/jobs"
    try:
        service.cancel_job(session, principal, job_id)
    except DomainError as exc:
        session.rollback()
        if exc.status_code in (403, 404):
            raise
        return redirect_with_error(f"{back}#jobs", {"jobs": exc.message})
    if job.project_id is not None:
        return RedirectResponse(f"{back}?notice=job_cancel#jobs", status_code=303)
    return RedirectResponse(back, status_code=303)
