"""HTML pages of loops: the list, the start form, and a loop's page (config, each iteration's
steps with status and links, what it waits for, pause/resume/cancel, plots across iterations).
They call the same services as the JSON API; the page reloads itself while the loop is active."""

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
from app.errors import DomainError, Invalid
from app.loops import service
from app.loops.charts import loop_charts
from app.loops.models import ACTIVE, LoopStatus, StepName
from app.loops.schemas import LoopCreate, UpdateKind
from app.pagination import MAX_LIMIT, Keyset
from app.projects.service import list_projects
from app.registry import service as registry
from app.validation import BIGINT_MAX, PathId
from app.web.deps import FormUser, PageRoute, PageUser
from app.web.flash import read_flash, redirect_with_error
from app.web.forms import json_field, text, validation_message
from app.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

UPDATE_HINTS = {
    UpdateKind.dpo: "DPO on the loop's preference pairs.",
    UpdateKind.expert_iteration: "Sample, keep the best by the new reward model, fine-tune.",
    UpdateKind.best_of_n: "Keep the weights; sample n and pick the best by the reward model.",
}
_DEFAULTS: dict[str, str] = {
    "project_id": "", "name": "", "policy_model_id": "", "rm_base_model_id": "",
    "update_kind": "dpo", "iterations": "2", "prompts_per_iteration": "8", "prompts": "",
    "prompt_set_id": "",
    "rm_config": '{\n  "max_steps": 100\n}', "update_config": '{\n  "max_steps": 100\n}',
    "sampling": '{\n  "n": 1,\n  "params": {"temperature": 1.0, "max_tokens": 128}\n}',
    "deadline_hours": "24", "min_labels": "8", "at_deadline": "proceed",
    "evaluation": '{\n  "num_prompts": 16\n}',
}  # fmt: skip


@router.get("/loops")
def loops_page(
    request: Request,
    principal: PageUser,
    session: DbSession,
    project_id: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
) -> Response:
    require_role(principal, Role.researcher)
    loops = service.list_loops(session, principal, Keyset(100, None), project_id)
    rows = [service.summary(session, loop) for loop in loops]
    context = {"loops": rows, "project_id": project_id}
    return render(request, "loops.html", context, principal=principal)


def _form_context(session: Any, principal: Principal, values: dict[str, Any]) -> dict[str, Any]:
    projects = list_projects(session, principal, Keyset(MAX_LIMIT, None))
    models = registry.list_versions(session, principal, Keyset(MAX_LIMIT, None))
    return {
        "values": values,
        "error": "",
        "updates": UPDATE_HINTS,
        "projects": projects,
        "policies": [m for m in models if m.kind.value != "reward_model"],
        "models": models,
    }


@router.get("/loops/new")
def new_loop_form(
    request: Request,
    principal: PageUser,
    session: DbSession,
    project_id: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
) -> Response:
    require_role(principal, Role.researcher)
    errors, typed = read_flash(request)
    values = {**_DEFAULTS, "project_id": str(project_id or ""), **typed}
    context = {**_form_context(session, principal, values), "error": errors.get("form", "")}
    return render(request, "loop_new.html", context, principal=principal)


def _number(form: FormData, name: str, label: str) -> float | None:
    raw = text(form, name)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise Invalid(f"{label} must be a number.") from None


def body_from_form(form: FormData) -> dict[str, Any]:
    """The API's body from the start form's fields (the same validation follows)."""
    body: dict[str, Any] = {
        "project_id": text(form, "project_id") or None,
        "policy_model_id": text(form, "policy_model_id") or None,
        "reward_model": {
            "base_model_id": text(form, "rm_base_model_id") or None,
            "config": json_field(form, "rm_config", "Reward model config") or {},
        },
        "update": {
            "kind": text(form, "update_kind"),
            "config": json_field(form, "update_config", "Update config") or {},
        },
        "iterations": text(form, "iterations") or None,
        "prompts_per_iteration": text(form, "prompts_per_iteration") or None,
    }
    prompts = [line.strip() for line in text(form, "prompts").splitlines() if line.strip()]
    if prompts or not text(form, "prompt_set_id"):
        body["prompts"] = prompts
    if text(form, "prompt_set_id"):
        body["prompt_set_id"] = text(form, "prompt_set_id")
    if text(form, "name"):
        body["name"] = text(form, "name")
    sampling = json_field(form, "sampling", "Sampling")
    if sampling is not None:
        body["sampling"] = sampling
    evaluation = json_field(form, "evaluation", "Evaluation")
    if evaluation is not None:
        body["evaluation"] = evaluation
    stop: dict[str, Any] = {"at_deadline": text(form, "at_deadline") or "proceed"}
    hours = _number(form, "deadline_hours", "The label deadline")
    if hours is not None:
        stop["label_deadline_seconds"] = max(1, round(hours * 3600))
    if text(form, "min_labels"):
        stop["min_labels"] = text(form, "min_labels")
    body["stop"] = stop
    return body


@router.post("/loops/new")
async def create_loop(request: Request, principal: FormUser, session: DbSession) -> Response:
    require_role(principal, Role.researcher)
    form = await request.form()
    values = {**_DEFAULTS, **{k: text(form, k) for k in _DEFAULTS}}
    values["prompts"] = "\n".join(
        line.strip() for line in text(form, "prompts").splitlines() if line.strip()
    )
    try:
        body = LoopCreate.model_validate(body_from_form(form))
        loop, _ = await run_in_threadpool(service.create_loop, session, principal, body)
    except (ValidationError, DomainError) as exc:
        if isinstance(exc, DomainError) and exc.status_code not in (403, 409, 422):
            raise
        session.rollback()
        error = validation_message(exc) if isinstance(exc, ValidationError) else exc.message
        return redirect_with_error("/loops/new", {"form": error}, values)
    return RedirectResponse(f"/loops/{loop.id}", status_code=303)


def _links(step: Any, project_id: int) -> list[tuple[str, str]]:
    """(text, href) of what a step made or used, for its row on the page."""
    out: list[tuple[str, str]] = []
    if step.job_id is not None:
        out.append((f"job #{step.job_id}", f"/jobs?project_id={project_id}"))
    links = step.links
    if "export_id" in links:
        out.append((f"snapshot #{links['export_id']}", f"/projects/{project_id}/exports"))
    if "training_run_id" in links:
        out.append((f"run #{links['training_run_id']}", f"/training/{links['training_run_id']}"))
    if links.get("model_id"):
        out.append((f"model #{links['model_id']}", f"/models/{links['model_id']}"))
    if "items" in links:
        out.append((f"{links['items']} items", f"/projects/{project_id}/items"))
    for job in links.get("judge_jobs") or []:
        out.append((f"judge job #{job}", f"/jobs?project_id={project_id}"))
    return out


AGAINST = (("win_rate_vs_iteration_0", "vs it. 0"), ("win_rate_vs_previous", "vs prev."))


def _numbers(metrics: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The headline numbers of an iteration, formatted."""
    if not metrics:
        return []
    rows = []
    for section, label in (
        ("by_reward_model", "reward model"),
        ("by_judge", "judge"),
        ("by_gold_reward", "gold reward"),
        ("by_humans", "humans"),
    ):
        m = metrics.get(section) or {}
        for key, name in (
            ("win_rate_vs_iteration_0", "vs it. 0"),
            ("win_rate_vs_previous", "vs prev."),
        ):
            v = m.get(key)
            if isinstance(v, int | float):
                rows.append((f"win rate {name} ({label})", f"{v:.0%}"))
        if section == "by_humans" and isinstance(m.get("win_rate"), int | float):
            rows.append(
                ("win rate vs it. 0 (humans)", f"{m['win_rate']:.0%} of {m.get('labelled')}")
            )
    acc = (metrics.get("reward_model") or {}).get("heldout_accuracy")
    if isinstance(acc, int | float):
        rows.append(("reward model held-out accuracy", f"{acc:.0%}"))
    length = metrics.get("length") or {}
    if isinstance(length.get("mean_words"), int | float):
        rows.append(("mean length (words)", f"{length['mean_words']:.1f}"))
    drift = length.get("drift_vs_iteration_0")
    if isinstance(drift, int | float):
        rows.append(("length drift vs it. 0", f"{drift:+.0%}"))
    return rows


@router.get("/loops/{loop_id}")
def loop_page(
    loop_id: PathId, request: Request, principal: PageUser, session: DbSession
) -> Response:
    loop = service.get_loop(session, principal, loop_id)
    out = service.to_out(session, loop)
    errors, _ = read_flash(request)
    iterations = [
        {
            "it": it,
            "numbers": _numbers(it.metrics),
            "steps": [(s, _links(s, out.project_id)) for s in it.steps],
        }
        for it in out.iterations
    ]
    context = {
        "loop": out,
        "iterations": iterations,
        "charts": loop_charts([it.model_dump() for it in out.iterations]),
        "active": out.status in ACTIVE,
        # Stopped at its label deadline: resume waits for labels again.
        "resumable": out.status is LoopStatus.stopped and out.current_step is StepName.labels,
        "may_steer": principal.is_admin or loop.created_by == principal.id,
        "error": errors.get("form", ""),
    }
    return render(request, "loop.html", context, principal=principal)


async def _act(action: Any, loop_id: int, principal: Principal, session: Any) -> Response:
    try:
        await run_in_threadpool(action, session, principal, loop_id)
    except DomainError as exc:  # a loop that ended meanwhile: said on its page
        session.rollback()
        if exc.status_code in (403, 404):
            raise
        return redirect_with_error(f"/loops/{loop_id}", {"form": exc.message})
    return RedirectResponse(f"/loops/{loop_id}", status_code=303)


@router.post("/loops/{loop_id}/pause")
async def pause_loop(loop_id: PathId, principal: FormUser, session: DbSession) -> Response:
    return await _act(service.pause_loop, loop_id, principal, session)


@router.post("/loops/{loop_id}/resume")
async def resume_loop(loop_id: PathId, principal: FormUser, session: DbSession) -> Response:
    return await _act(service.resume_loop, loop_id, principal, session)


@router.post("/loops/{loop_id}/cancel")
async def cancel_loop(loop_id: PathId, principal: FormUser, session: DbSession) -> Response:
    return await _act(service.cancel_loop, loop_id, principal, session)
