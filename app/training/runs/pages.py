"""HTML pages of training runs: the list, the start form, a run's page (progress, metrics,
loss curve, lineage; it reloads itself while the run is unfinished) and a side-by-side
comparison. They call the same services as the JSON API and draw what the jobs stored."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from app.auth.deps import DbSession
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.errors import DomainError
from app.pagination import MAX_LIMIT, Keyset
from app.projects.service import list_projects
from app.registry import service as registry
from app.training.runs import service
from app.training.runs.charts import headline_charts, loss_chart, scalar_metrics, show
from app.training.runs.kinds import RunKind
from app.training.runs.schemas import RunCreate, RunOut
from app.validation import PathId
from app.web.deps import FormUser, PageRoute, PageUser
from app.web.flash import read_flash, redirect_with_error
from app.web.forms import json_field, text, validation_message
from app.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

KIND_HINTS = {
    RunKind.reward_model: "Bradley-Terry on pairs, Plackett-Luce on rankings, per-label on spans.",
    RunKind.dpo: "Direct preference optimisation of a policy on pairs.",
    RunKind.sft: "Fine-tune a policy on critique rewrites.",
    RunKind.best_of_n: "Sample n per prompt, keep the best by a reward model.",
    RunKind.expert_iteration: "Sample, keep the top by a reward model, fine-tune on them.",
}
UNFINISHED = ("queued", "running")
MAX_COMPARED = 6


@router.get("/training")
def runs_page(request: Request, principal: PageUser, session: DbSession) -> Response:
    require_role(principal, Role.researcher)
    runs = service.list_runs(session, principal, Keyset(100, None))
    rows = [service.to_out(session, r) for r in runs]
    return render(request, "training_runs.html", {"runs": rows}, principal=principal)


def _form_context(session: Any, principal: Principal, values: dict[str, Any]) -> dict[str, Any]:
    projects = list_projects(session, principal, Keyset(MAX_LIMIT, None))
    models = registry.list_versions(session, principal, Keyset(MAX_LIMIT, None))
    return {
        "values": values,
        "error": "",
        "kinds": KIND_HINTS,
        "projects": projects,
        "models": [m for m in models if m.kind.value != "reward_model"],
        "reward_models": [m for m in models if m.kind.value == "reward_model"],
    }


_DEFAULTS: dict[str, Any] = {
    "kind": "reward_model", "project_id": "", "export_id": "", "base_model_id": "",
    "reward_model_id": "", "source_run_id": "", "config": '{\n  "max_steps": 100\n}',
    "export": "",
}  # fmt: skip


@router.get("/training/new")
def new_run_form(
    request: Request,
    principal: PageUser,
    session: DbSession,
    project_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    require_role(principal, Role.researcher)
    errors, typed = read_flash(request)
    values = {**_DEFAULTS, "project_id": str(project_id or ""), **typed}
    context = {**_form_context(session, principal, values), "error": errors.get("form", "")}
    return render(request, "training_new.html", context, principal=principal)


def _body_from_form(form: FormData) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": text(form, "kind")}
    for name in ("project_id", "export_id", "base_model_id", "reward_model_id", "source_run_id"):
        if text(form, name):
            body[name] = text(form, name)
    config = json_field(form, "config", "config")
    body["config"] = {} if config is None else config
    export = json_field(form, "export", "export")
    if export is not None:
        body["export"] = export
    return body


@router.post("/training/new")
async def create_run(request: Request, principal: FormUser, session: DbSession) -> Response:
    require_role(principal, Role.researcher)
    form = await request.form()
    values = {**_DEFAULTS, **{k: text(form, k) for k in _DEFAULTS}}
    try:
        body = RunCreate.model_validate(_body_from_form(form))
        run, _ = await run_in_threadpool(service.create_run, session, principal, body)
    except (ValidationError, DomainError) as exc:
        if isinstance(exc, DomainError) and exc.status_code not in (409, 422):
            raise
        session.rollback()
        error = validation_message(exc) if isinstance(exc, ValidationError) else exc.message
        return redirect_with_error("/training/new", {"form": error}, values)
    return RedirectResponse(f"/training/{run.id}", status_code=303)


def _run_view(run: RunOut) -> dict[str, Any]:
    curve = (run.metrics or {}).get("loss_curve") or []
    return {
        "run": run,
        "numbers": {k: show(v) for k, v in scalar_metrics(run.metrics).items()},
        "chart": loss_chart([(f"run {run.id}", curve)], f"loss-{run.id}") if curve else None,
        "detail": {k: show(v) for k, v in (run.progress_detail or {}).items()},
        "unfinished": run.status in UNFINISHED,
    }


@router.get("/training/compare")
def compare_runs(
    request: Request,
    principal: PageUser,
    session: DbSession,
    run: Annotated[list[int], Query(max_length=MAX_COMPARED)] = [],  # noqa: B006
) -> Response:
    require_role(principal, Role.researcher)
    ids = list(dict.fromkeys(r for r in run if 1 <= r <= 2**63 - 1))
    runs = [service.to_out(session, service.get_run(session, principal, i)) for i in ids]
    numbers = [scalar_metrics(r.metrics) for r in runs]
    names = sorted({k for n in numbers for k in n})
    table = [(name, [show(n.get(name)) for n in numbers]) for name in names]
    curves = [
        (f"run {r.id} ({r.kind.value})", (r.metrics or {}).get("loss_curve") or []) for r in runs
    ]
    chart = loss_chart(curves, "loss-compare") if any(c for _, c in curves) else None
    bars = headline_charts([(f"run {r.id}", n) for r, n in zip(runs, numbers, strict=True)])
    return render(
        request,
        "training_compare.html",
        {"runs": runs, "table": table, "chart": chart, "bars": bars},
        principal=principal,
    )


@router.get("/training/{training_run_id}")
def run_page(
    training_run_id: PathId, request: Request, principal: PageUser, session: DbSession
) -> Response:
    run = service.to_out(session, service.get_run(session, principal, training_run_id))
    errors, _ = read_flash(request)
    context = {**_run_view(run), "error": errors.get("form", "")}
    return render(request, "training_run.html", context, principal=principal)


@router.post("/training/{training_run_id}/cancel")
async def cancel_run(
    training_run_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    try:
        await run_in_threadpool(service.cancel_run, session, principal, training_run_id)
    except DomainError as exc:  # a run that ended meanwhile: said on its page
        session.rollback()
        if exc.status_code in (403, 404):
            raise
        return redirect_with_error(f"/training/{training_run_id}", {"form": exc.message})
    return RedirectResponse(f"/training/{training_run_id}", status_code=303)
