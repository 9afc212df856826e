"""The exports page of a project: choose schema, format and filters (validated exactly as the
API validates `GET /export`), see how many rows would come out and why none would, start a
snapshot, watch its job, download its files, and delete earlier snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from app.auth.deps import DbSession
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.errors import DomainError, describe_errors
from app.exports import service
from app.exports.schemas import (
    ONLY_FOR,
    SCHEMA_KINDS,
    Aggregate,
    ExportOptions,
    ExportQuery,
    Format,
    Gold,
    Pairs,
    Source,
    Style,
)
from app.jobs.models import UNFINISHED, Job
from app.pagination import Cursor, Keyset
from app.projects.service import get_project
from app.validation import PathId
from app.web.deps import FormUser, PageRoute, PageUser
from app.web.flash import read_flash, redirect_with_error
from app.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_SIZE = 20
# Options shown folded under "More options" unless one of them is set.
ADVANCED = (
    "style", "pairs", "aggregate", "aspect", "rating_threshold", "span_threshold",
    "annotator_ids", "judge_ids", "created_after", "created_before", "max_annotation_id",
    "metadata", "eval_items",
)  # fmt: skip
# The form's fields, by the API's query parameter names; list-valued ones are split on commas
# (ids) or lines (metadata key=value) before ExportQuery sees them, as the query string would.
FIELDS = (
    "schema", "format", "style", "pairs", "aggregate", "aspect", "rating_threshold",
    "span_threshold", "source", "min_agreement", "min_votes", "gold", "annotator_ids",
    "judge_ids", "created_after", "created_before", "max_annotation_id", "metadata", "eval_items",
)  # fmt: skip
DEFAULTS: dict[str, Any] = ExportOptions().stored()
NOTICES = {
    "started": "Snapshot started: it is written in the background; this page follows its job.",
    "deleted": "Snapshot deleted, with its files.",
}


def _field_values(params: Mapping[str, Any]) -> dict[str, str]:
    """What the form shows: the submitted text, else the API's default."""
    out: dict[str, str] = {}
    for name in FIELDS:
        value = params.get(name)
        if isinstance(value, str):
            out[name] = value
        else:
            default = DEFAULTS.get(name)
            out[name] = "" if default in (None, [], {}) else str(default)
    return out


def parse_options(values: Mapping[str, str]) -> ExportOptions:
    """The form's text, through the API's own query schema: the same rules, the same messages."""
    raw: dict[str, Any] = {}
    for name in FIELDS:
        text = values.get(name, "").strip()
        if not text:
            continue
        if name == "metadata":
            raw[name] = [line.strip() for line in text.splitlines() if line.strip()]
        else:
            raw[name] = text
    return ExportQuery.model_validate(raw).to_options()


def _problems(err: ValidationError) -> list[str]:
    out = []
    for e in describe_errors(err.errors(include_url=False, include_input=False)):
        where = ".".join(str(p) for p in e["loc"])
        out.append(f"{where}: {e['msg']}." if where else f"{e['msg']}.")
    return out


def _changed(options: dict[str, Any]) -> dict[str, Any]:
    """A snapshot's options that differ from the defaults (what the list shows)."""
    return {k: v for k, v in options.items() if DEFAULTS.get(k) != v}


def _as_form(options: ExportOptions) -> dict[str, str]:
    """Validated options back into form text (the start form's hidden fields)."""
    stored = options.stored()
    out: dict[str, str] = {}
    for name in FIELDS:
        value = stored.get(name)
        if value in (None, [], {}):
            continue
        if name in ("annotator_ids", "judge_ids"):
            out[name] = ",".join(str(v) for v in value)
        elif name == "metadata":
            out[name] = "\n".join(f"{k}={_scalar_text(v)}" for k, v in value.items())
        else:
            out[name] = str(value)
    return out


def _query(fields: dict[str, str]) -> str:
    """The same options as `GET /export` query parameters (metadata repeated per key)."""
    pairs: list[tuple[str, str]] = []
    for k, v in fields.items():
        pairs.extend((k, line) for line in (v.splitlines() if k == "metadata" else [v]))
    return urlencode(pairs)


def _scalar_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _page(
    request: Request,
    principal: Principal,
    session: DbSession,
    project_id: int,
    *,
    values: dict[str, str],
    cursor: str | None = None,
    run_preview: bool = False,
    error: str = "",
    status: int = 200,
) -> Response:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    problems: list[str] = []
    preview = None
    options: ExportOptions | None = None
    if run_preview:
        try:
            options = parse_options(values)
            preview = service.preview_export(session, principal, project.id, options)
        except ValidationError as err:
            problems = _problems(err)
            status = 422
        except DomainError as exc:
            session.rollback()
            problems = [exc.message]
            status = exc.status_code
    page = Keyset.parse(PAGE_SIZE, cursor)
    exports = service.list_exports(session, principal, project.id, page, newest_first=True)
    job_ids = [e.job_id for e in exports[:PAGE_SIZE] if e.job_id is not None]
    jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(job_ids)))}
    watching = any(e.status in [s.value for s in UNFINISHED] for e in exports[:PAGE_SIZE])
    start = _as_form(options) if options is not None and not problems else {}
    kinds = [s.value for s, ks in SCHEMA_KINDS.items() if project.kind in ks]
    return render(
        request,
        "exports.html",
        {
            "project": project,
            "values": values,
            "advanced_open": any(values[k] != _field_values({})[k] for k in ADVANCED),
            "schemas": kinds,
            "choices": {
                "format": [f.value for f in Format],
                "style": [s.value for s in Style],
                "pairs": [p.value for p in Pairs],
                "aggregate": [a.value for a in Aggregate],
                "source": [s.value for s in Source],
                "gold": [g.value for g in Gold],
                "eval_items": [g.value for g in Gold],
            },
            "only_for": {k: ", ".join(s.value for s in v) for k, v in ONLY_FOR.items()},
            "preview": preview,
            "start_fields": start,
            "stream_query": _query(start),
            "problems": problems,
            "error": error,
            "exports": [
                (e, jobs.get(e.job_id or 0), _changed(e.options)) for e in exports[:PAGE_SIZE]
            ],
            "next_cursor": page.next_cursor([e.id for e in exports]),
            "cursor": cursor or "",
            "watching": watching,
            "notice": NOTICES.get(request.query_params.get("notice", ""), ""),
        },
        principal=principal,
        status_code=status,
    )


@router.get("/projects/{project_id}/exports")
def exports_page(
    project_id: PathId,
    request: Request,
    principal: PageUser,
    session: DbSession,
    cursor: Cursor = None,
) -> Response:
    params = request.query_params
    # The form was sent (its `schema` select always is): count what would come out.
    submitted = "schema" in params
    errors, typed = read_flash(request)  # a refused start or delete, carried here
    return _page(
        request, principal, session, project_id,
        values=_field_values(typed or params), cursor=cursor,
        run_preview=submitted and not errors, error=errors.get("form", ""),
    )  # fmt: skip


@router.post("/projects/{project_id}/exports")
async def start_snapshot(
    project_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k in FIELDS}
    back = f"/projects/{project_id}/exports"
    try:
        options = parse_options(values)
        await run_in_threadpool(service.request_snapshot, session, principal, project_id, options)
    except ValidationError as err:
        return redirect_with_error(back, {"form": " ".join(_problems(err))}, values)
    except DomainError as exc:
        session.rollback()
        if exc.status_code in (403, 404):
            raise
        return redirect_with_error(back, {"form": exc.message}, values)
    return RedirectResponse(
        f"/projects/{project_id}/exports?notice=started#snapshots", status_code=303
    )


@router.post("/projects/{project_id}/exports/{export_id}/delete")
def delete_snapshot(
    project_id: PathId, export_id: PathId, principal: FormUser, session: DbSession
) -> Response:
    try:
        service.delete_export(session, principal, project_id, export_id)
    except DomainError as exc:
        session.rollback()
        if exc.status_code in (403, 404):
            raise
        return redirect_with_error(f"/projects/{project_id}/exports", {"form": exc.message})
    return RedirectResponse(f"/projects/{project_id}/exports?notice=deleted", status_code=303)
