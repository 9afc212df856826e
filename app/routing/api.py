"""JSON routes for routing: policies (admin), a project's routing, route jobs, decisions, budget."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.auth.deps import Admin, DbSession, Researcher
from app.pagination import Cursor, Keyset, Limit, Page
from app.routing import service
from app.routing.schemas import (
    BudgetOut,
    DecisionFilter,
    PolicyCreate,
    PolicyOut,
    PolicyPatch,
    RouteQueued,
    RouteRequest,
    RoutingOut,
    RoutingSet,
)
from app.validation import PathId, SafeText

router = APIRouter(prefix="/api/v1", tags=["routing"])


@router.post("/routing-policies", status_code=status.HTTP_201_CREATED, response_model=PolicyOut)
def create_policy(body: PolicyCreate, principal: Admin, session: DbSession) -> PolicyOut:
    """A policy and its version 1."""
    return service.create_policy(session, principal, body)


@router.get("/routing-policies", response_model=Page)
def list_policies(
    principal: Admin, session: DbSession, limit: Limit = None, cursor: Cursor = None
) -> Page:
    page = Keyset.parse(limit, cursor)
    return page.page(service.list_policies(session, principal, page))


@router.get("/routing-policies/{policy_id}", response_model=PolicyOut)
def get_policy(policy_id: PathId, principal: Admin, session: DbSession) -> PolicyOut:
    return service.get_policy(session, principal, policy_id)


@router.patch("/routing-policies/{policy_id}", response_model=PolicyOut)
def update_policy(
    policy_id: PathId, body: PolicyPatch, principal: Admin, session: DbSession
) -> PolicyOut:
    """Adds a version (the fields given over the latest version); earlier ones never change."""
    return service.update_policy(session, principal, policy_id, body)


@router.put("/projects/{project_id}/routing", response_model=RoutingOut)
def set_routing(
    project_id: PathId, body: RoutingSet, principal: Admin, session: DbSession
) -> RoutingOut:
    """Point the project at a policy version and a judge pool; new items are then held."""
    return service.set_routing(session, principal, project_id, body)


@router.get("/projects/{project_id}/routing", response_model=RoutingOut)
def get_routing(project_id: PathId, principal: Researcher, session: DbSession) -> RoutingOut:
    return service.routing_status(session, principal, project_id)


@router.post(
    "/projects/{project_id}/route", status_code=status.HTTP_202_ACCEPTED, response_model=RouteQueued
)
def route(
    project_id: PathId, body: RouteRequest, principal: Researcher, session: DbSession
) -> RouteQueued:
    """Route held items (`{}`: all of them), or preview it (`dry_run`, `sample`); the job's
    result says what it did."""
    job = service.request_route(session, principal, project_id, body)
    return RouteQueued(job_id=job.id)


@router.get("/projects/{project_id}/routing/decisions", response_model=Page)
def list_decisions(
    project_id: PathId,
    principal: Researcher,
    session: DbSession,
    decision: Annotated[DecisionFilter | None, Query()] = None,
    reason: Annotated[SafeText | None, Query(max_length=200)] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page:
    page = Keyset.parse(limit, cursor)
    rows = service.list_decisions(session, principal, project_id, page, decision, reason)
    return page.page(rows)


@router.get("/projects/{project_id}/routing/budget", response_model=BudgetOut)
def get_budget(project_id: PathId, principal: Researcher, session: DbSession) -> BudgetOut:
    """Total, reserved and spent, reconciled with the human annotations that arrived."""
    return service.get_budget(session, principal, project_id)
