"""HTML pages for judges: the admin list and forms (create, edit, run, "try on one item") and a
judge's metrics on a project with its calibration plot, on the same services as the API."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from app.auth.deps import DbSession
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.errors import DomainError
from app.inference import registry
from app.jobs import service as jobs
from app.judges import service
from app.judges.models import JudgeRun
from app.judges.schemas import JudgeCreate, JudgePatch, JudgeRunCreate
from app.pagination import MAX_LIMIT, Keyset
from app.projects import service as projects
from app.validation import PathId
from app.web.deps import FormUser, PageRoute, PageUser
from app.web.flash import read_flash, redirect_with_error
from app.web.forms import text
from app.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

NOTICES = {
    "created": "Judge created.",
    "saved": "Judge saved.",
    "run": "Run started: its progress shows below.",
}
EXAMPLE_PARAMS = {
    "simulated": {"truth": {"metadata_key": "truth"}, "accuracy": 0.8},
    "openai": {"base_url": "http://127.0.0.1:8080/v1", "concurrency": 4},
    "transformers": {"device": "cpu", "batch_size": 8},
    "vllm": {"gpu_memory_utilization": 0.9},
}


def _checkbox(form: FormData, name: str) -> bool:
    value = form.get(name)
    if value not in (None, "on"):
        raise ValueError(f"{name} is a checkbox: 'on' or absent.")
    return value == "on"


def _body(form: FormData, *, create: bool) -> dict[str, Any]:
    """The form as the JSON body the API takes; a params field that is not JSON is a ValueError."""
    raw = text(form, "params") or "{}"
    try:
        params = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"Parameters are not JSON: {exc.msg} (line {exc.lineno}).") from None
    body: dict[str, Any] = {
        "name": text(form, "name"),
        "model": text(form, "model"),
        "params": params,
        "costs": {k: text(form, k) or "0" for k in ("per_call", "per_1k_input", "per_1k_output")},
        "enabled": _checkbox(form, "enabled"),
    }
    if create:
        body["backend"] = text(form, "backend")
    return body


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}." if where else f"{first['msg']}."
    if isinstance(exc, DomainError):
        return exc.message
    return str(exc)


def _list_page(
    request: Request,
    principal: Principal,
    session: DbSession,
    values: dict[str, Any] | None = None,
    error: str = "",
) -> Response:
    judges = service.list_judges(session, principal, Keyset(MAX_LIMIT, None))
    defaults = {
        "name": "", "backend": "simulated", "model": "",
        "params": json.dumps(EXAMPLE_PARAMS["simulated"], indent=2),
        "costs": {"per_call": 0, "per_1k_input": 0, "per_1k_output": 0}, "enabled": True,
    }  # fmt: skip
    return render(
        request,
        "judges.html",
        {
            "judges": judges,
            "values": {**defaults, **(values or {})},
            "backends": registry.known_backends(),
            "examples": {k: json.dumps(v) for k, v in EXAMPLE_PARAMS.items()},
            "error": error,
        },
        principal=principal,
    )


@router.get("/admin/judges")
def judges_page(request: Request, principal: PageUser, session: DbSession) -> Response:
    require_role(principal, Role.admin)
    errors, typed = read_flash(request)
    return _list_page(request, principal, session, typed, errors.get("form", ""))


@router.post("/admin/judges")
async def create_judge(request: Request, principal: FormUser, session: DbSession) -> Response:
    require_role(principal, Role.admin)
    form = await request.form()
    try:
        body = _body(form, create=True)
        judge = await run_in_threadpool(
            service.create_judge, session, principal, JudgeCreate.model_validate(body)
        )
    except (ValueError, DomainError) as exc:  # ValidationError is a ValueError
        session.rollback()
        values = {
            "name": text(form, "name"), "backend": text(form, "backend"),
            "model": text(form, "model"), "params": text(form, "params"),
            "costs": {k: text(form, k) for k in ("per_call", "per_1k_input", "per_1k_output")},
            "enabled": form.get("enabled") == "on",
        }  # fmt: skip
        return redirect_with_error("/admin/judges", {"form": _message(exc)}, values)
    return RedirectResponse(f"/admin/judges/{judge.id}?notice=created", status_code=303)


def _judge_page(
    request: Request,
    principal: Principal,
    session: DbSession,
    judge_id: int,
    *,
    values: dict[str, Any] | None = None,
    error: str = "",
) -> Response:
    judge = service.get_judge(session, principal, judge_id)
    runs = list(
        session.scalars(
            select(JudgeRun).where(JudgeRun.judge_id == judge.id).order_by(JudgeRun.id.desc())
        ).all()[:50]
    )
    outs = [service.run_out(session, r) for r in runs]
    visible = projects.list_projects(session, principal, Keyset(MAX_LIMIT, None))
    names = {p.id: p.name for p in visible}
    current = {
        "name": judge.name, "model": judge.model,
        "params": json.dumps(judge.params, indent=2), "costs": judge.costs,
        "enabled": judge.enabled,
    }  # fmt: skip
    return render(
        request,
        "judge.html",
        {
            "judge": judge,
            "values": {**current, **(values or {})},
            "runs": outs,
            "projects": visible,
            "project_names": names,
            "active": any(r.status in ("queued", "running") for r in outs),
            "notice": NOTICES.get(request.query_params.get("notice", ""), ""),
            "error": error,
        },
        principal=principal,
    )


@router.get("/admin/judges/{judge_id}")
def judge_page(
    judge_id: PathId, request: Request, principal: PageUser, session: DbSession
) -> Response:
    require_role(principal, Role.admin)
    errors, typed = read_flash(request)
    return _judge_page(
        request, principal, session, judge_id, values=typed, error=errors.get("form", "")
    )


@router.post("/admin/judges/{judge_id}")
async def edit_judge(
    judge_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    require_role(principal, Role.admin)
    form = await request.form()
    try:
        patch = JudgePatch.model_validate(_body(form, create=False))
        await run_in_threadpool(service.update_judge, session, principal, judge_id, patch)
    except (ValueError, DomainError) as exc:
        session.rollback()
        if isinstance(exc, DomainError) and exc.status_code == 404:
            raise
        values = {"params": text(form, "params"), "name": text(form, "name")}
        return redirect_with_error(f"/admin/judges/{judge_id}", {"form": _message(exc)}, values)
    return RedirectResponse(f"/admin/judges/{judge_id}?notice=saved", status_code=303)


def _form_id(form: FormData, name: str) -> int:
    value = text(form, name)
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) < 2**63:
        raise ValueError(f"Choose a {name.replace('_', ' ')}.")
    return int(value)


@router.post("/admin/judges/{judge_id}/runs")
async def start_run(
    judge_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    require_role(principal, Role.admin)
    form = await request.form()
    try:
        project_id = _form_id(form, "project_id")
        items = text(form, "items") or "unjudged"
        if items not in ("unjudged", "all"):
            raise ValueError("Items must be 'unjudged' or 'all'.")
        body = JudgeRunCreate(judge_id=judge_id, items=items)
        await run_in_threadpool(service.start_run, session, principal, project_id, body)
    except (ValueError, DomainError) as exc:
        session.rollback()
        return redirect_with_error(f"/admin/judges/{judge_id}", {"form": _message(exc)})
    return RedirectResponse(f"/admin/judges/{judge_id}?notice=run", status_code=303)


@router.post("/admin/judges/{judge_id}/try")
async def try_item(
    judge_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    require_role(principal, Role.admin)
    form = await request.form()
    try:
        project_id, item_id = _form_id(form, "project_id"), _form_id(form, "item_id")
        job, _ = await run_in_threadpool(
            service.try_on_item, session, principal, judge_id, project_id, item_id
        )
    except (ValueError, DomainError) as exc:
        session.rollback()
        return redirect_with_error(f"/admin/judges/{judge_id}", {"form": _message(exc)})
    return RedirectResponse(f"/admin/judges/{judge_id}/try/{job.id}", status_code=303)


@router.get("/admin/judges/{judge_id}/try/{job_id}")
def try_page(
    judge_id: PathId, job_id: PathId, request: Request, principal: PageUser, session: DbSession
) -> Response:
    require_role(principal, Role.admin)
    judge = service.get_judge(session, principal, judge_id)
    job = jobs.get_job(session, principal, job_id)
    if job.kind != "judges.try" or job.params.get("judge_id") != judge.id:
        return RedirectResponse(f"/admin/judges/{judge.id}", status_code=303)
    p = job.params
    prompts = service.rendered_prompts(
        session, principal, p["project_id"], p["item_id"], p["template_id"]
    )
    return render(
        request,
        "judge_try.html",
        {"judge": judge, "job": job, "prompts": prompts, "result": job.result},
        principal=principal,
    )


@router.get("/judges/{judge_id}/metrics")
def metrics_page(
    judge_id: PathId, request: Request, principal: PageUser, session: DbSession
) -> Response:
    """A judge measured on one project (`?project_id=`), for researcher members and admins."""
    require_role(principal, Role.researcher)
    judge = service.get_judge(session, principal, judge_id)
    raw = request.query_params.get("project_id", "")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) < 2**63:
        return render(
            request,
            "error.html",
            {"message": "Choose a project: add ?project_id= to the address.", "status": 422},
            principal=principal,
            status_code=422,
        )
    project = projects.get_project(session, principal, int(raw))
    m = service.metrics(session, principal, judge.id, project.id)
    return render(
        request,
        "judge_metrics.html",
        # svg.py escapes every text it draws, so its chart is safe to insert as markup.
        {"judge": judge, "project": project, "m": m, "svg": Markup(m.calibration_svg())},
        principal=principal,
    )
