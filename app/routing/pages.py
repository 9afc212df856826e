"""HTML pages of routing: `/admin/routing` (policies and their versions) and a project's routing
tab (policy and judges, budget, decisions by reason, dry-run preview), on the same services as
the JSON API. Pages only read what jobs stored; previews and routes are jobs."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from app.auth.deps import DbSession
from app.auth.models import Role
from app.auth.service import Principal, require_role
from app.errors import DomainError
from app.jobs.models import Job
from app.pagination import MAX_LIMIT, Keyset
from app.projects.service import get_project
from app.routing import service
from app.routing.errors import NoRouting
from app.routing.jobs import ROUTE
from app.routing.models import RoutingDecision, Strategy
from app.routing.schemas import PolicyCreate, PolicyPatch, RouteRequest, RoutingSet
from app.validation import PathId
from app.web.deps import FormUser, PageRoute, PageUser
from app.web.flash import read_flash, redirect_with_error
from app.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

STRATEGY_HINTS = {
    Strategy.all_human: "Every item to humans, while the budget lasts.",
    Strategy.all_ai: "Every item to the judges.",
    Strategy.random: 'A random share to humans: {"fraction": 0.2}.',
    Strategy.rules: (
        'By metadata: {"rules": [{"key": "safety", "values": ["moderate"], "route": "human"}]}.'
    ),
    Strategy.uncertainty: (
        'Swap-inconsistent, split or low-margin items to humans: {"margin_threshold": 0.3}.'
    ),
    Strategy.learned: ('The learned router (uncertainty until it has data): {"min_train": 200}.'),
}
NOTICES = {
    "created": "Policy created.",
    "versioned": "Saved as a new version.",
    "attached": "Routing saved: new items are held until routed.",
    "preview": "Preview queued: the result appears here when the job has run.",
    "routed": "Route job queued.",
}


def _form_body(form: FormData, *, create: bool) -> dict[str, Any]:
    """The policy form as the JSON body the API takes (JSON text fields parsed)."""

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    body: dict[str, Any] = {"strategy": text("strategy")}
    if create:
        body["name"] = text("name")
    for field in ("human_budget", "human_cost", "audit_fraction", "human_overlap"):
        if text(field):
            body[field] = text(field)
    for field in ("params", "min_human"):
        raw = text(field)
        if raw:
            try:
                body[field] = json.loads(raw)
            except json.JSONDecodeError as err:
                raise FormError(f"{field.replace('_', ' ')}: not JSON ({err.msg}).") from None
    body["route_after_import"] = form.get("route_after_import") == "on"
    return body


class FormError(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _message(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]).replace("_", " ")
    return f"{where}: {first['msg']}." if where else f"{first['msg']}."


def _admin_page(
    request: Request,
    principal: Principal,
    session: Session,
    *,
    error: str = "",
    values: dict[str, Any] | None = None,
) -> Response:
    require_role(principal, Role.admin)
    policies = service.list_policies(session, principal, Keyset(MAX_LIMIT, None))
    return render(
        request,
        "routing_admin.html",
        {
            "policies": policies,
            "strategies": STRATEGY_HINTS,
            "error": error,
            "values": values or {"strategy": "uncertainty", "human_cost": 1, "human_budget": 0},
            "notice": NOTICES.get(request.query_params.get("notice", ""), ""),
        },
        principal=principal,
    )


@router.get("/admin/routing")
def admin_routing(request: Request, principal: PageUser, session: DbSession) -> Response:
    errors, typed = read_flash(request)
    return _admin_page(
        request, principal, session, error=errors.get("form", ""), values=typed or None
    )


@router.post("/admin/routing")
async def create_policy(request: Request, principal: FormUser, session: DbSession) -> Response:
    require_role(principal, Role.admin)
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        body = PolicyCreate.model_validate(_form_body(form, create=True))
        policy = await run_in_threadpool(service.create_policy, session, principal, body)
    except (ValidationError, FormError, DomainError) as exc:
        session.rollback()
        message = _message(exc) if isinstance(exc, ValidationError) else exc.message
        return redirect_with_error("/admin/routing", {"form": message}, values)
    return RedirectResponse(f"/admin/routing/{policy.id}?notice=created", status_code=303)


def _policy_page(
    request: Request,
    principal: Principal,
    session: Session,
    policy_id: int,
    *,
    error: str = "",
    typed: dict[str, Any] | None = None,
) -> Response:
    policy = service.get_policy(session, principal, policy_id)
    latest = policy.latest
    return render(
        request,
        "routing_policy.html",
        {
            "policy": policy,
            "strategies": STRATEGY_HINTS,
            "values": {
                **latest.model_dump(mode="json"),
                "params": json.dumps(latest.params),
                "min_human": json.dumps(latest.min_human) if latest.min_human else "",
                "human_overlap": latest.human_overlap or "",
                **(typed or {}),
            },
            "error": error,
            "notice": NOTICES.get(request.query_params.get("notice", ""), ""),
        },
        principal=principal,
    )


@router.get("/admin/routing/{policy_id}")
def policy_page(
    policy_id: PathId, request: Request, principal: PageUser, session: DbSession
) -> Response:
    errors, typed = read_flash(request)
    return _policy_page(
        request, principal, session, policy_id, error=errors.get("form", ""), typed=typed
    )


@router.post("/admin/routing/{policy_id}")
async def new_version(
    policy_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    require_role(principal, Role.admin)
    form = await request.form()
    try:
        patch = PolicyPatch.model_validate(_form_body(form, create=False))
        await run_in_threadpool(service.update_policy, session, principal, policy_id, patch)
    except (ValidationError, FormError, DomainError) as exc:
        session.rollback()
        if isinstance(exc, DomainError) and exc.status_code in (403, 404):
            raise
        message = _message(exc) if isinstance(exc, ValidationError) else exc.message
        typed = {k: v for k, v in form.items() if isinstance(v, str)}
        typed.setdefault("route_after_import", "")  # an unticked box is not sent
        return redirect_with_error(f"/admin/routing/{policy_id}", {"form": message}, typed)
    return RedirectResponse(f"/admin/routing/{policy_id}?notice=versioned", status_code=303)


# --- the project's routing tab ----------------------------------------------------------


def _latest_preview(session: Session, project_id: int) -> Job | None:
    return session.scalars(
        select(Job)
        .where(
            Job.project_id == project_id,
            Job.kind == ROUTE.kind,
            Job.params["dry_run"].as_boolean().is_(True),
        )
        .order_by(Job.id.desc())
        .limit(1)
    ).one_or_none()


def _reasons(session: Session, project_id: int) -> list[tuple[str, str, int]]:
    rows = session.execute(
        select(RoutingDecision.reason, RoutingDecision.decision, func.count())
        .where(RoutingDecision.project_id == project_id)
        .group_by(RoutingDecision.reason, RoutingDecision.decision)
        .order_by(func.count().desc())
    )
    return [(str(r), str(d), int(n)) for r, d, n in rows]


def _project_routing_page(
    request: Request,
    principal: Principal,
    session: Session,
    project_id: int,
    *,
    error: str = "",
) -> Response:
    require_role(principal, Role.researcher)
    project = get_project(session, principal, project_id)
    try:
        routing = service.routing_status(session, principal, project.id)
    except NoRouting:
        routing = None
    preview = _latest_preview(session, project.id) if routing else None
    policies = (
        service.list_policies(session, principal, Keyset(MAX_LIMIT, None))
        if principal.is_admin
        else []
    )
    budget = routing.budget if routing else None
    return render(
        request,
        "routing_project.html",
        {
            "project": project,
            "routing": routing,
            "budget": budget,
            "spent_pct": (100 * budget.spent / budget.total) if budget and budget.total else 0,
            "reserved_pct": (100 * budget.reserved / budget.total)
            if budget and budget.total
            else 0,
            "reasons": _reasons(session, project.id) if routing else [],
            "preview": preview,
            "policies": policies,
            "judges": service.judge_summaries(
                session, routing.judge_ids if routing else [], project.id
            ),
            "error": error,
            "notice": NOTICES.get(request.query_params.get("notice", ""), ""),
        },
        principal=principal,
    )


@router.get("/projects/{project_id}/routing")
def project_routing(
    project_id: PathId, request: Request, principal: PageUser, session: DbSession
) -> Response:
    errors, _ = read_flash(request)
    return _project_routing_page(
        request, principal, session, project_id, error=errors.get("form", "")
    )


@router.post("/projects/{project_id}/routing")
async def attach_routing(
    project_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    require_role(principal, Role.admin)
    form = await request.form()
    judges = form.get("judge_ids")
    try:
        ids = [int(j) for j in str(judges or "").replace(",", " ").split()]
        body = RoutingSet.model_validate({"policy_id": form.get("policy_id"), "judge_ids": ids})
        await run_in_threadpool(service.set_routing, session, principal, project_id, body)
    except (ValidationError, ValueError, DomainError) as exc:
        session.rollback()
        if isinstance(exc, DomainError) and exc.status_code in (403, 404):
            raise
        message = (
            _message(exc)
            if isinstance(exc, ValidationError)
            else (exc.message if isinstance(exc, DomainError) else "judge ids: whole numbers.")
        )
        return redirect_with_error(f"/projects/{project_id}/routing", {"form": message})
    return RedirectResponse(f"/projects/{project_id}/routing?notice=attached", status_code=303)


@router.post("/projects/{project_id}/routing/preview")
async def preview(
    project_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    return await _route(request, principal, session, project_id, dry_run=True)


@router.post("/projects/{project_id}/routing/run")
async def run(
    project_id: PathId, request: Request, principal: FormUser, session: DbSession
) -> Response:
    return await _route(request, principal, session, project_id, dry_run=False)


async def _route(
    request: Request, principal: Principal, session: Session, project_id: int, *, dry_run: bool
) -> Response:
    body = RouteRequest(dry_run=dry_run, sample=1000 if dry_run else None)
    try:
        await run_in_threadpool(service.request_route, session, principal, project_id, body)
    except DomainError as exc:
        session.rollback()
        if exc.status_code in (403, 404):
            raise
        return redirect_with_error(f"/projects/{project_id}/routing", {"form": exc.message})
    notice = "preview" if dry_run else "routed"
    return RedirectResponse(f"/projects/{project_id}/routing?notice={notice}", status_code=303)
